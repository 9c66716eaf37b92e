//! `ganlab bench`: training steps per second on the reference shape of the core issue:
//! ring-8, non-saturating loss, MLP G and D with 2 hidden ReLU layers, Adam, z of dim 2,
//! gradient norms every step, simultaneous updates.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;

use crate::spec::{Precision, TrialConfig};
use crate::train::trial::metrics_columns;
use crate::train::Trainer;

/// One benchmark shape.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub width: usize,
    pub batch: usize,
    pub steps: u64,
    pub precision: Precision,
}

/// The configuration that a shape trains.
pub fn config(shape: Shape) -> TrialConfig {
    let mut cfg = TrialConfig::default();
    cfg.steps = shape.steps;
    cfg.precision = shape.precision;
    cfg.train.batch = shape.batch;
    if let crate::spec::GeneratorConfig::Mlp(m) = &mut cfg.generator {
        m.width = shape.width;
    }
    if let crate::spec::DiscriminatorConfig::Mlp(m) = &mut cfg.discriminator {
        m.width = shape.width;
    }
    cfg
}

fn measure<B: AutodiffBackend>(cfg: &TrialConfig, device: B::Device) -> anyhow::Result<f64> {
    let mut t = Trainer::<B>::new(cfg, device)?;
    let columns = metrics_columns(&t).len();
    let mut sink = 0.0;
    for _ in 0..20 {
        sink += t.step().loss_d; // warm-up: allocator, caches
    }
    let start = Instant::now();
    for _ in 0..cfg.steps {
        let s = t.step();
        // What recording a row costs, without the disk.
        sink += s
            .grad_sq_g
            .iter()
            .chain(&s.grad_sq_d)
            .map(|v| v.sqrt())
            .sum::<f64>()
            + columns as f64;
    }
    let secs = start.elapsed().as_secs_f64();
    std::hint::black_box(sink);
    Ok(cfg.steps as f64 / secs)
}

/// Which backend a benchmark runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchBackend {
    /// The default CPU backend (Flex in f32, NdArray in f64).
    Cpu,
    /// NdArray in both precisions.
    Ndarray,
    /// NVIDIA GPU (builds with `--features cuda`).
    Cuda,
}

/// Steps per second for a shape.
pub fn steps_per_second(shape: Shape, backend: BenchBackend) -> anyhow::Result<f64> {
    let cfg = config(shape);
    let ndarray = backend == BenchBackend::Ndarray;
    if backend == BenchBackend::Cuda {
        #[cfg(feature = "cuda")]
        {
            use crate::backend::{Cuda, CudaDevice};
            use burn::backend::Autodiff;
            let dev = CudaDevice::default();
            return match shape.precision {
                Precision::F32 => measure::<Autodiff<Cuda<f32>>>(&cfg, dev),
                Precision::F64 => measure::<Autodiff<Cuda<f64>>>(&cfg, dev),
            };
        }
        #[cfg(not(feature = "cuda"))]
        anyhow::bail!("this ganlab was built without the `cuda` feature");
    }
    match shape.precision {
        Precision::F32 if ndarray => {
            measure::<crate::backend::NdArrayF32>(&cfg, crate::backend::CPU)
        }
        Precision::F32 => measure::<crate::backend::CpuF32>(&cfg, crate::backend::CPU_F32),
        Precision::F64 => measure::<crate::backend::CpuF64>(&cfg, crate::backend::CPU),
    }
}

/// Timings of one full game-Jacobian spectrum.
#[derive(Debug, Clone, Copy)]
pub struct SpectrumTiming {
    /// Parameters of both players.
    pub params: usize,
    pub jacobian_s: f64,
    pub eigen_s: f64,
}

/// The reference game of the probe issue: ring-8, MLP 2 x `width` tanh players, a probe batch
/// of `batch` rows, at the initial point of a trial with seed 0.
fn reference_probe_game(
    width: usize,
    batch: usize,
) -> anyhow::Result<(crate::probe::field::GameField, Vec<f64>)> {
    use crate::spec::{Activation, DiscriminatorConfig, GeneratorConfig, MlpConfig};
    let mut cfg = TrialConfig::default();
    let mlp = MlpConfig {
        depth: 2,
        width,
        activation: Activation::Tanh,
    };
    cfg.generator = GeneratorConfig::Mlp(mlp.clone());
    cfg.discriminator = DiscriminatorConfig::Mlp(mlp);
    let field = crate::probe::field::GameField::from_config(&cfg, batch)?;
    let t = Trainer::<crate::backend::CpuF64>::new(&cfg, crate::backend::CPU)?;
    let (g, d) = t.parameter_values();
    Ok((field, g.into_iter().chain(d).flatten().collect()))
}

/// The full spectrum of the reference probe game, in f64.
pub fn spectrum_timing(width: usize, batch: usize) -> anyhow::Result<SpectrumTiming> {
    let (field, p) = reference_probe_game(width, batch)?;
    let start = Instant::now();
    let jac = field.jacobian::<crate::backend::CpuF64>(&p, &crate::backend::CPU);
    let jacobian_s = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let eig = crate::probe::spectrum::dense_eigenvalues(&jac, p.len());
    std::hint::black_box(eig);
    Ok(SpectrumTiming {
        params: p.len(),
        jacobian_s,
        eigen_s: start.elapsed().as_secs_f64(),
    })
}

/// Seconds, products and converged count for the top `k` eigenvalues (largest magnitude) of the
/// same game as [`spectrum_timing`], by Arnoldi on the exact product, without forming J.
pub fn arnoldi_timing(
    width: usize,
    batch: usize,
    k: usize,
) -> anyhow::Result<(usize, f64, usize, usize)> {
    use crate::probe::krylov::{arnoldi, Which};
    let (field, p) = reference_probe_game(width, batch)?;
    let mut rng = crate::rng::stream(0, crate::rng::Stream::Probe);
    let mut op = |w: &[f64]| field.vjp::<crate::backend::CpuF64>(&p, w, &crate::backend::CPU);
    let start = Instant::now();
    let r = arnoldi(
        &mut op,
        p.len(),
        k,
        Which::LargestMagnitude,
        1e-8,
        400,
        &mut rng,
    );
    Ok((
        p.len(),
        start.elapsed().as_secs_f64(),
        r.products,
        r.converged,
    ))
}
