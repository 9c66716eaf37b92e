//! `ganlab bench`: training steps per second on the reference shape of the core issue:
//! ring-8, non-saturating loss, MLP G and D with 2 hidden ReLU layers, Adam, z of dim 2,
//! gradient norms every step, simultaneous updates.

use std::time::Instant;

use crate::backend::GanBackend;

use crate::spec::{Precision, TrialConfig};
use crate::train::Trainer;
use crate::trial::metrics_columns;

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

fn measure<B: GanBackend>(cfg: &TrialConfig, device: B::Device) -> anyhow::Result<f64> {
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

/// The DCGAN benchmark's configuration (issue 12's reference): `size` x `size` grey images
/// (28 for the reference; 64 for the GPU suite) (the
/// generated shapes, so no file is needed; the data do not change the cost), z of dim 100,
/// width 64 (PyTorch's DCGAN example's ngf = ndf = 64), batch norm in G, batch norm in D for
/// the non-saturating loss and layer norm for WGAN-GP's critic, Adam (lr 2e-4, beta1 0.5).
/// `tools/pytorch_dcgan.py` is the same model in PyTorch.
pub fn dcgan_config(loss: crate::spec::Loss, size: usize, batch: usize, steps: u64) -> TrialConfig {
    use crate::spec::*;
    let mut cfg = TrialConfig::default();
    cfg.steps = steps;
    cfg.data = DataConfig::Images(ImageData {
        source: ImageSource::Shapes,
        size,
        channels: 1,
        count: 2048,
        ..Default::default()
    });
    cfg.latent.dim = 100;
    cfg.generator = GeneratorConfig::Dcgan(DcganConfig {
        width: 64,
        norm: Norm::Batch,
    });
    cfg.discriminator = DiscriminatorConfig::Dcgan(DcganConfig {
        width: 64,
        norm: if loss == Loss::WganGp {
            Norm::Layer
        } else {
            Norm::Batch
        },
    });
    cfg.objective.loss = loss;
    cfg.train.batch = batch;
    let adam = OptimizerConfig::Adam(AdamConfig {
        lr: 2e-4,
        beta1: 0.5,
        ..AdamConfig::default()
    });
    cfg.train.opt_g = adam.clone();
    cfg.train.opt_d = adam;
    cfg
}

/// Steps per second of the DCGAN benchmark (f32).
pub fn dcgan_steps_per_second(
    loss: crate::spec::Loss,
    size: usize,
    batch: usize,
    steps: u64,
    backend: BenchBackend,
) -> anyhow::Result<f64> {
    measure_on(&dcgan_config(loss, size, batch, steps), backend)
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
    /// Any GPU through wgpu, f32 (builds with `--features wgpu`).
    Wgpu,
}

/// Steps per second for a shape.
pub fn steps_per_second(shape: Shape, backend: BenchBackend) -> anyhow::Result<f64> {
    measure_on(&config(shape), backend)
}

/// Steps per second of `cfg` (in its precision) on `backend`.
fn measure_on(cfg: &TrialConfig, backend: BenchBackend) -> anyhow::Result<f64> {
    if backend == BenchBackend::Cuda {
        crate::backend::check_cuda()?;
        #[cfg(feature = "cuda")]
        {
            use crate::backend::{Cuda, CudaDevice};
            use burn::backend::Autodiff;
            let dev = CudaDevice::default();
            return match cfg.precision {
                Precision::F32 => measure::<Autodiff<Cuda<f32>>>(cfg, dev),
                Precision::F64 => measure::<Autodiff<Cuda<f64>>>(cfg, dev),
            };
        }
        #[cfg(not(feature = "cuda"))]
        anyhow::bail!("this ganlab was built without the `cuda` feature");
    }
    if backend == BenchBackend::Wgpu {
        crate::backend::check_wgpu()?;
        #[cfg(feature = "wgpu")]
        return measure::<burn::backend::Autodiff<crate::backend::Wgpu<f32>>>(
            cfg,
            crate::backend::WgpuDevice::default(),
        );
    }
    match cfg.precision {
        Precision::F32 if backend == BenchBackend::Ndarray => {
            measure::<crate::backend::NdArrayF32>(cfg, crate::backend::CPU)
        }
        Precision::F32 => measure::<crate::backend::CpuF32>(cfg, crate::backend::CPU_F32),
        Precision::F64 => measure::<crate::backend::CpuF64>(cfg, crate::backend::CPU),
    }
}

/// Timings of one full game-Jacobian spectrum.
#[derive(Debug, Clone, Copy)]
pub struct SpectrumTiming {
    /// Parameters of both players.
    pub params: usize,
    pub jacobian_s: f64,
    pub eigen_s: f64,
    /// The symmetric spectra a dense probe adds: both players' Hessians and J's symmetric part.
    pub symmetric_s: f64,
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
    cfg.probe.batch = batch;
    let t = Trainer::<crate::backend::CpuF64>::new(&cfg, crate::backend::CPU)?;
    let p = t.flat_parameters();
    Ok((t.field.setup.field, p))
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
    let eigen_s = start.elapsed().as_secs_f64();
    let (n, ng) = (p.len(), field.dims().0);
    let j = nalgebra::DMatrix::from_row_slice(n, n, &jac);
    let start = Instant::now();
    for (at, size) in [(0, ng), (ng, n - ng)] {
        let h = j.view((at, at), (size, size));
        let h = crate::probe::spectrum::symmetric_eigenvalues((h + h.transpose()) * 0.5);
        std::hint::black_box(h);
    }
    let s = crate::probe::spectrum::symmetric_eigenvalues((&j + j.transpose()) * 0.5);
    std::hint::black_box(s);
    Ok(SpectrumTiming {
        params: n,
        jacobian_s,
        eigen_s,
        symmetric_s: start.elapsed().as_secs_f64(),
    })
}

/// What [`arnoldi_timing`] measured.
pub struct ArnoldiTiming {
    pub params: usize,
    /// Wall time of the whole solve.
    pub seconds: f64,
    /// The part of `seconds` spent in operator products (the rest is the solver's own work).
    pub product_seconds: f64,
    pub products: usize,
    pub converged: usize,
}

/// Time, products and converged count for the top `k` eigenvalues (largest magnitude) of the
/// same game as [`spectrum_timing`], by Arnoldi on the exact product, without forming J.
pub fn arnoldi_timing(width: usize, batch: usize, k: usize) -> anyhow::Result<ArnoldiTiming> {
    use crate::probe::krylov::{arnoldi, Which};
    let (field, p) = reference_probe_game(width, batch)?;
    let mut rng = crate::rng::stream(0, crate::rng::Stream::Probe);
    let mut product_seconds = 0.0;
    let mut op = |w: &[f64]| {
        let t = Instant::now();
        let out = field.vjp::<crate::backend::CpuF64>(&p, w, &crate::backend::CPU);
        product_seconds += t.elapsed().as_secs_f64();
        out
    };
    let start = Instant::now();
    let r = arnoldi(
        &mut op,
        p.len(),
        k,
        Which::LargestMagnitude,
        1e-8,
        400,
        50,
        &mut rng,
    );
    let seconds = start.elapsed().as_secs_f64();
    Ok(ArnoldiTiming {
        params: p.len(),
        seconds,
        product_seconds,
        products: r.products,
        converged: r.converged,
    })
}

/// Writes a synthetic study of `trials` trials x `steps` recorded steps into `dir`, shaped like
/// a ring-8 sweep (3 losses x seeds, MLP 2 x 16 players, probes and mode coverage every 500
/// steps, 64 eigenvalues per probe): the input of the report benchmark.
pub fn write_synthetic_study(
    dir: &std::path::Path,
    trials: usize,
    steps: usize,
) -> anyhow::Result<()> {
    use rand::Rng;
    use std::fmt::Write as _;
    let losses = ["non_saturating", "wgan_clip", "wgan_gp"];
    std::fs::create_dir_all(dir)?;
    crate::store::write_atomic(
        &dir.join("experiment.toml"),
        b"[study]\nname = \"synthetic\"\ndescription = \"report benchmark\"\n",
    )?;
    let mut rows = Vec::new();
    let layers = ["l0.w", "l0.b", "l1.w", "l1.b", "l2.w", "l2.b"];
    for i in 0..trials {
        let loss = losses[i % losses.len()];
        let seed = (i / losses.len()) as u64;
        let name = format!("{i:03}-{loss}-{seed}");
        let tdir = dir.join(&name);
        std::fs::create_dir_all(&tdir)?;
        let mut rng = crate::rng::stream(i as u64, crate::rng::Stream::Eval);
        let diverged_at = (i % 10 == 9).then_some((steps * 3 / 4) as u64);
        let last = diverged_at.map_or(steps, |d| d as usize + 1);
        let mut m = String::from("step,loss_g,loss_d,d_real,d_fake,grad_norm_g,grad_norm_d");
        for p in ["g", "d"] {
            for l in layers {
                let _ = write!(m, ",grad_norm_{p}/{l}");
            }
        }
        m.push_str(",lr_g,lr_d,eig_max_re,eig_min_re,eig_max_im_over_re,eig_unstable_fraction,gd_spectral_radius,hess_g_min,hess_g_max,hess_d_min,hess_d_max,eig_converged,wall_time_s\n");
        let mut e = String::from("step,matrix,method,index,re,im,residual\n");
        let mut modes = String::from("step,modes_covered,modes_total,high_quality,reverse_kl\n");
        for s in 0..last {
            let t = s as f64 / steps as f64;
            let mut row = vec![
                s as f64,
                0.7 + 0.1 * (20.0 * t).sin() + 0.01 * rng.random::<f64>(),
                1.3 - 0.1 * (20.0 * t).sin() + 0.01 * rng.random::<f64>(),
                0.6,
                0.4,
                1.0 - 0.5 * t,
                2.0 - t,
            ];
            row.extend((0..12).map(|_| rng.random::<f64>()));
            row.extend([2e-4, 2e-4]);
            if s % 500 == 0 {
                row.extend([
                    0.5 - t,
                    -0.1 * t,
                    3.0,
                    0.1,
                    1.0001,
                    -0.1,
                    2.0,
                    -0.2,
                    3.0,
                    64.0,
                ]);
                for k in 0..64 {
                    let _ = writeln!(
                        e,
                        "{s},game,arnoldi,{k},{},{},1e-9",
                        0.5 - t + 0.01 * k as f64,
                        (k as f64 * 0.3).sin()
                    );
                }
                let _ = writeln!(modes, "{s},{},8,{},{}", 8 - (i % 3), 0.8 * t, 0.1);
            } else {
                row.extend([f64::NAN; 10]);
            }
            row.push(s as f64 * 0.002);
            if Some(s as u64) == diverged_at {
                row[1] = f64::NAN;
            }
            let cells: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(c, v)| {
                    if c == 0 {
                        (*v as u64).to_string()
                    } else {
                        v.to_string()
                    }
                })
                .collect();
            m.push_str(&cells.join(","));
            m.push('\n');
        }
        crate::store::write_atomic(&tdir.join("metrics.csv"), m.as_bytes())?;
        crate::store::write_atomic(&tdir.join("eigen.csv"), e.as_bytes())?;
        crate::store::write_atomic(&tdir.join("modes.csv"), modes.as_bytes())?;
        let mut status = crate::store::TrialStatus::running(&TrialConfig::default());
        status.seed = seed;
        status.steps = last as u64 - u64::from(diverged_at.is_some());
        status.diverged_at = diverged_at;
        status.status = if diverged_at.is_some() {
            crate::store::Status::Diverged
        } else {
            crate::store::Status::Done
        };
        rows.push(crate::store::TrialRow {
            trial: name.clone(),
            swept: vec![loss.to_string(), seed.to_string()],
            status: status.clone(),
        });
        let text = toml::to_string_pretty(&status)?;
        crate::store::write_atomic(&tdir.join("status.toml"), text.as_bytes())?;
    }
    crate::store::write_trials_csv(
        &dir.join("trials.csv"),
        &["objective.loss".to_string(), "seed".to_string()],
        &rows,
    )
}

/// Seconds `report::make` takes on a synthetic study of `trials` x `steps` (written first,
/// not timed), and the number of figures it drew.
pub fn report_timing(trials: usize, steps: usize) -> anyhow::Result<(f64, usize)> {
    let root = std::env::temp_dir().join(format!("ganlab-report-bench-{}", std::process::id()));
    let study = root.join("study");
    write_synthetic_study(&study, trials, steps)?;
    let start = Instant::now();
    let r = crate::report::make(&study, &root.join("report"));
    let secs = start.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&root);
    Ok((secs, r?.figures))
}

/// What saving one trial-state checkpoint costs.
#[derive(Debug, Clone, Copy)]
pub struct CheckpointTiming {
    /// Parameters of both players.
    pub params: usize,
    /// Bytes of the state file.
    pub bytes: u64,
    /// Median seconds of one save (state to the host, encoding, write, fsync, rename) and of
    /// one load (read, CRC, decode, tensors back on the device).
    pub save_s: f64,
    pub load_s: f64,
}

/// Saves and loads the checkpoint of the quickstart's models (ring-8, MLP 2 x 128 ReLU, Adam
/// with both moments, f32) `repeats` times in a temporary folder.
pub fn checkpoint_timing(repeats: usize) -> anyhow::Result<CheckpointTiming> {
    use crate::record::{Checkpoint, RecordState, TrialSink};
    use crate::store::{checkpoint, CsvSink};
    use crate::train::state::TrialState;
    let mut cfg = config(Shape {
        width: 128,
        batch: 256,
        steps: 1,
        precision: Precision::F32,
    });
    cfg.train.update = crate::spec::UpdateScheme::Alternating;
    let device = crate::backend::CPU_F32;
    let mut t = Trainer::<crate::backend::CpuF32>::new(&cfg, device)?;
    for _ in 0..3 {
        t.step();
    }
    let dir = tempfile_dir()?;
    let mut sink = CsvSink::new(&dir, true);
    sink.metrics_header(&metrics_columns(&t))?;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let mut saves = Vec::new();
    let mut loads = Vec::new();
    let mut bytes = 0;
    for _ in 0..repeats.max(1) {
        let start = Instant::now();
        let c = Checkpoint {
            trainer: t.state.save(t.setup()),
            records: RecordState::default(),
        };
        sink.save_state(&c)?;
        saves.push(start.elapsed().as_secs_f64());
        let start = Instant::now();
        let (loaded, _, path) = checkpoint::load_newest(&dir)
            .checkpoint
            .ok_or_else(|| anyhow::anyhow!("the checkpoint just saved does not load"))?;
        let state = TrialState::<crate::train::Inner<crate::backend::CpuF32>>::restore(
            t.setup(),
            &loaded.trainer,
            &device,
        )?;
        std::hint::black_box(state);
        loads.push(start.elapsed().as_secs_f64());
        bytes = std::fs::metadata(&path)?.len();
        t.state.step += 1; // a new file name each time, as in training
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(CheckpointTiming {
        params: t.flat_parameters().len(),
        bytes,
        save_s: median(saves),
        load_s: median(loads),
    })
}

/// A fresh folder under the system's temporary directory.
fn tempfile_dir() -> anyhow::Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!(
        "ganlab-bench-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Seconds to train `trials` seeds of one shape, one trial at a time on `jobs` threads and
/// batched (`train::batched`, the trials split into `jobs` groups, one per thread).
#[derive(Debug, Clone, Copy)]
pub struct BatchedTiming {
    pub single_s: f64,
    pub batched_s: f64,
}

/// Times `trials` seeds of `shape` (its steps each) both ways on `backend`.
pub fn batched_timing(
    shape: Shape,
    trials: usize,
    jobs: usize,
    backend: BenchBackend,
) -> anyhow::Result<BatchedTiming> {
    let cfgs: Vec<TrialConfig> = (0..trials)
        .map(|i| {
            let mut c = config(shape);
            c.seed = i as u64;
            c
        })
        .collect();
    if backend == BenchBackend::Cuda {
        crate::backend::check_cuda()?;
        #[cfg(feature = "cuda")]
        {
            use crate::backend::{Cuda, CudaDevice};
            use burn::backend::Autodiff;
            let dev = CudaDevice::default();
            return match shape.precision {
                Precision::F32 => both_ways::<Autodiff<Cuda<f32>>>(&cfgs, jobs, dev),
                Precision::F64 => both_ways::<Autodiff<Cuda<f64>>>(&cfgs, jobs, dev),
            };
        }
        #[cfg(not(feature = "cuda"))]
        anyhow::bail!("this ganlab was built without the `cuda` feature");
    }
    if backend == BenchBackend::Wgpu {
        crate::backend::check_wgpu()?;
        #[cfg(feature = "wgpu")]
        return both_ways::<burn::backend::Autodiff<crate::backend::Wgpu<f32>>>(
            &cfgs,
            jobs,
            crate::backend::WgpuDevice::default(),
        );
    }
    match shape.precision {
        Precision::F32 if backend == BenchBackend::Ndarray => {
            both_ways::<crate::backend::NdArrayF32>(&cfgs, jobs, crate::backend::CPU)
        }
        Precision::F32 => both_ways::<crate::backend::CpuF32>(&cfgs, jobs, crate::backend::CPU_F32),
        Precision::F64 => both_ways::<crate::backend::CpuF64>(&cfgs, jobs, crate::backend::CPU),
    }
}

/// Waits for benchmark threads; their results are kept from the optimiser.
fn join_all(
    workers: Vec<std::thread::ScopedJoinHandle<'_, anyhow::Result<f64>>>,
) -> anyhow::Result<()> {
    for w in workers {
        let sink = w
            .join()
            .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))??;
        std::hint::black_box(sink);
    }
    Ok(())
}

fn both_ways<B: GanBackend>(
    cfgs: &[TrialConfig],
    jobs: usize,
    dev: B::Device,
) -> anyhow::Result<BatchedTiming> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let jobs = jobs.clamp(1, cfgs.len().max(1));
    let steps = cfgs.first().map_or(0, |c| c.steps);
    // One trial at a time per thread, as `ganlab run --jobs` runs them.
    let next = AtomicUsize::new(0);
    let start = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<f64> {
                    let mut sink = 0.0;
                    while let Some(c) = cfgs.get(next.fetch_add(1, Ordering::Relaxed)) {
                        let mut t = Trainer::<B>::new(c, dev.clone())?;
                        for _ in 0..steps {
                            sink += t.step().loss_d;
                        }
                    }
                    Ok(sink)
                })
            })
            .collect();
        join_all(workers)
    })?;
    let single_s = start.elapsed().as_secs_f64();
    // Batched: `jobs` groups, one per thread.
    let size = cfgs.len().div_ceil(jobs);
    let start = Instant::now();
    std::thread::scope(|s| -> anyhow::Result<()> {
        let workers: Vec<_> = cfgs
            .chunks(size)
            .map(|chunk| {
                let dev = dev.clone();
                s.spawn(move || -> anyhow::Result<f64> {
                    let mut trainers = chunk
                        .iter()
                        .map(|c| Trainer::<B>::new(c, dev.clone()))
                        .collect::<anyhow::Result<Vec<_>>>()?;
                    let mut members: Vec<&mut Trainer<B>> = trainers.iter_mut().collect();
                    let mut group = crate::train::batched::Group::new(&members)?;
                    let mut sink = 0.0;
                    for _ in 0..steps {
                        sink += group.step(&mut members)[0].loss_d;
                    }
                    group.store(&mut members);
                    Ok(sink)
                })
            })
            .collect();
        join_all(workers)
    })?;
    Ok(BatchedTiming {
        single_s,
        batched_s: start.elapsed().as_secs_f64(),
    })
}
