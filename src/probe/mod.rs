//! Measurements of a trial that are not part of training itself: mode coverage, and the
//! stability probes (game-Jacobian spectrum and player Hessians) on a [`field::GameField`].

pub mod field;
pub mod krylov;
pub mod mechanics;
pub mod modes;
pub mod openblas;
pub mod operator;
pub mod path;
pub mod spectrum;

use nalgebra::DMatrix;

use crate::spec::ProbeProduct;
use field::GameField;
use spectrum::{
    dense_eigenvalues, figures, gd_step_eigenvalues, largest_modulus, Eigenvalue, SpectrumFigures,
};

/// Evaluates `$body` with `$B` the backend a probe of `$field` computes on and `$dev` its
/// device. With `probe.device = "trial"` a GPU trial's probe computes its products on its GPU
/// in f32 (`GameField::on`); every other probe computes in f64 on the CPU. Games with
/// convolutions run on Flex, with every
/// tensor the probe makes in f64 (Flex's default is f32): NdArray took 11.3 s for one exact
/// product of a DCGAN game of 386,786 parameters where Flex took 0.6 s (in f32). Other games
/// stay on NdArray, which the recorded golden tables were computed with.
macro_rules! on_probe_backend {
    ($field:expr, |$B:ident, $dev:ident| $body:expr) => {{
        match $field.on {
            #[cfg(feature = "cuda")]
            crate::probe::field::ProbeOn::Cuda => {
                type $B = burn::backend::Autodiff<crate::backend::Cuda<f32>>;
                let device = crate::backend::CudaDevice::default();
                let $dev = &device;
                $body
            }
            #[cfg(feature = "wgpu")]
            crate::probe::field::ProbeOn::Wgpu => {
                type $B = burn::backend::Autodiff<crate::backend::Wgpu<f32>>;
                let device = crate::backend::WgpuDevice::default();
                let $dev = &device;
                $body
            }
            // The CPU (a build without a GPU feature never gets a GPU trial past validation).
            _ if $field.game.convolutional() => {
                type $B = burn::backend::Autodiff<burn::backend::Flex>;
                let $dev = &crate::backend::CPU_F32;
                $body
            }
            _ => {
                type $B = crate::backend::CpuF64;
                let $dev = &crate::backend::CPU;
                $body
            }
        }
    }};
}
pub(crate) use on_probe_backend;

/// What one probe found at one point.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Eigenvalues of the game Jacobian J: all of them (dense, sorted by real part) or the
    /// Arnoldi selection (best first).
    pub game: Vec<Eigenvalue>,
    /// Eigenvalues of H_GG = d(grad_theta L_G)/d(theta), ascending (all, or Lanczos's two ends).
    pub hessian_g: Vec<f64>,
    /// Eigenvalues of H_DD = d(grad_phi L_D)/d(phi), ascending (all, or Lanczos's two ends).
    pub hessian_d: Vec<f64>,
    /// `dense` or `arnoldi` for J; `dense` or `lanczos` for the Hessians.
    pub game_method: &'static str,
    pub hessian_method: &'static str,
    /// Residual norms of the Krylov values, in the order of the values (empty when dense).
    pub game_residuals: Vec<f64>,
    pub hessian_g_residuals: Vec<f64>,
    pub hessian_d_residuals: Vec<f64>,
    /// How many of the game's values converged (all when dense).
    pub converged: usize,
    pub figures: SpectrumFigures,
    /// Spectral radius of I - H J for simultaneous gradient descent at the trial's learning
    /// rates (exact for plain SGD; for Adam and RMSProp it uses their nominal rates).
    pub gd_radius: f64,
    /// Rotation, potential part, Hamiltonian and the kind of point (see [`mechanics`]).
    pub mechanics: mechanics::Mechanics,
    /// The trial's update scheme's field matrix and step map (see [`operator`]); dense probes
    /// only.
    pub operator: Option<operator::SchemeOperator>,
}

/// A player's Hessian block of J, ascending.
fn hessian_eigenvalues(block: DMatrix<f64>) -> Vec<f64> {
    if block.nrows() == 0 {
        return Vec::new();
    }
    // Exactly symmetric in exact arithmetic; average away the rounding.
    spectrum::symmetric_eigenvalues((&block + block.transpose()) * 0.5)
}

/// The full spectrum at flat parameters `p` (theta then phi), in f64 on the CPU, with the
/// exact Jacobian.
pub fn probe_dense(field: &GameField, p: &[f64], lr_g: f64, lr_d: f64) -> ProbeReport {
    probe_dense_with(field, p, lr_g, lr_d, ProbeProduct::Exact, None)
}

/// The game Jacobian at `p`, row-major, by the product a configuration asks for.
pub fn jacobian(field: &GameField, p: &[f64], product: ProbeProduct) -> Vec<f64> {
    match product {
        ProbeProduct::Exact => on_probe_backend!(field, |B, dev| field.jacobian::<B>(p, dev)),
        ProbeProduct::FiniteDifference => {
            on_probe_backend!(field, |B, dev| field.jacobian_fd::<B>(p, dev))
        }
    }
}

/// Each coordinate's step size: `lr_g` (scaled for a fine-tuned prior model's tensors) for
/// the generator's, `lr_d` for the discriminator's.
fn coordinate_rates(field: &GameField, lr_g: f64, lr_d: f64) -> Vec<f64> {
    let n = field.dims().2;
    let mut etas: Vec<f64> = field
        .theta
        .iter()
        .zip(&field.game.generator_lr_scale)
        .flat_map(|(s, k)| std::iter::repeat_n(lr_g * k, s.len()))
        .collect();
    etas.resize(n, lr_d);
    etas
}

/// [`probe_dense`] with the Jacobian formed by `product`, and with `train` the matrices of
/// the update scheme it names (see [`operator`]).
pub fn probe_dense_with(
    field: &GameField,
    p: &[f64],
    lr_g: f64,
    lr_d: f64,
    product: ProbeProduct,
    train: Option<&crate::spec::TrainConfig>,
) -> ProbeReport {
    let (ng, _, n) = field.dims();
    let jac = jacobian(field, p, product);
    let game = dense_eigenvalues(&jac, n);
    let m = DMatrix::from_row_slice(n, n, &jac);
    let hessian_g = hessian_eigenvalues(m.view((0, 0), (ng, ng)).into_owned());
    let hessian_d = hessian_eigenvalues(m.view((ng, ng), (n - ng, n - ng)).into_owned());
    let v = on_probe_backend!(field, |B, dev| field.fields::<B>(p, dev));
    let mechanics = mechanics::measure(&jac, n, &game, &hessian_g, &hessian_d, &v);
    // I - H J's eigenvalues, once: the radius of plain gradient descent at the trial's rates,
    // and the simultaneous scheme's step map.
    let etas = coordinate_rates(field, lr_g, lr_d);
    let plain_step = gd_step_eigenvalues(&jac, n, &etas, Some(&game));
    let operator = train.map(|t| operator::measure(&jac, n, ng, &etas, &plain_step, t));
    ProbeReport {
        operator,
        hessian_g,
        hessian_d,
        mechanics,
        figures: figures(&game),
        gd_radius: largest_modulus(&plain_step),
        game_method: "dense",
        hessian_method: "dense",
        game_residuals: Vec::new(),
        hessian_g_residuals: Vec::new(),
        hessian_d_residuals: Vec::new(),
        converged: n,
        game,
    }
}

/// Krylov probe for games too large to form J: Arnoldi's `cfg.top_k` eigenvalues of J (on the
/// product J^T w, which has J's eigenvalues) and Lanczos's `top_k` lowest and highest
/// eigenvalues of each player's Hessian. The figures are over the values found; the spectral
/// radius of I - H J needs the whole spectrum and is NaN here.
pub fn probe_krylov(
    field: &GameField,
    p: &[f64],
    cfg: &crate::spec::ProbeConfig,
    seed: u64,
) -> ProbeReport {
    use krylov::{arnoldi, lanczos, Which};
    let (ng, nd, n) = field.dims();
    let which = match cfg.which {
        crate::spec::ProbeWhich::LargestMagnitude => Which::LargestMagnitude,
        crate::spec::ProbeWhich::LargestReal => Which::LargestReal,
        crate::spec::ProbeWhich::SmallestReal => Which::SmallestReal,
        crate::spec::ProbeWhich::LargestImag => Which::LargestImag,
    };
    let mut rng = crate::rng::stream(seed, crate::rng::Stream::Probe);
    // J^T w (exact) and J w (finite differences) have the same eigenvalues.
    let product = |w: &[f64]| match cfg.product {
        ProbeProduct::Exact => on_probe_backend!(field, |B, dev| field.vjp::<B>(p, w, dev)),
        ProbeProduct::FiniteDifference => {
            on_probe_backend!(field, |B, dev| field.jvp_fd::<B>(p, w, dev))
        }
    };
    let mut op = |w: &[f64]| product(w);
    let game = arnoldi(
        &mut op,
        n,
        cfg.top_k,
        which,
        cfg.tol,
        cfg.max_krylov,
        cfg.max_restarts,
        &mut rng,
    );
    // A player's Hessian-vector product is that player's block of J^T (w on its block, 0
    // else); the exact product then needs only that player's part of v.
    let mut block = |generator: bool| {
        let (lo, len) = if generator { (0, ng) } else { (ng, nd) };
        let mut op = |w: &[f64]| {
            let full = match cfg.product {
                ProbeProduct::Exact => on_probe_backend!(field, |B, dev| {
                    field.block_vjps::<B>(p, generator, w, dev)
                }),
                ProbeProduct::FiniteDifference => {
                    let mut full = vec![0.0; n];
                    full[lo..lo + len].copy_from_slice(w);
                    product(&full)
                }
            };
            full[lo..lo + len].to_vec()
        };
        lanczos(&mut op, len, cfg.top_k, cfg.tol, cfg.max_krylov, &mut rng)
    };
    let hg = block(true);
    let hd = block(false);
    let re = |r: &krylov::KrylovResult| r.values.iter().map(|e| e.re).collect::<Vec<_>>();
    ProbeReport {
        operator: None,
        mechanics: mechanics::Mechanics::partial(&on_probe_backend!(field, |B, dev| {
            field.fields::<B>(p, dev)
        })),
        figures: figures(&game.values),
        gd_radius: f64::NAN,
        game_method: "arnoldi",
        hessian_method: "lanczos",
        hessian_g: re(&hg),
        hessian_d: re(&hd),
        hessian_g_residuals: hg.residuals,
        hessian_d_residuals: hd.residuals,
        converged: game.converged,
        game_residuals: game.residuals,
        game: game.values,
    }
}

/// The probe a configuration asks for at flat parameters `p`: dense up to
/// `cfg.max_dense` parameters, Krylov above.
pub fn probe_point(
    field: &GameField,
    p: &[f64],
    cfg: &crate::spec::ProbeConfig,
    seed: u64,
    train: &crate::spec::TrainConfig,
    lr_g: f64,
    lr_d: f64,
) -> ProbeReport {
    spectrum::with_threads(cfg.eigen_threads, || {
        if field.dims().2 <= cfg.max_dense {
            probe_dense_with(field, p, lr_g, lr_d, cfg.product, Some(train))
        } else {
            probe_krylov(field, p, cfg, seed)
        }
    })
}
