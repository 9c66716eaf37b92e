//! The game's vector field v = (grad_theta L_G, grad_phi L_D) and its Jacobian products.
//!
//! A probe sees a [`Game`] and a fixed probe batch, nothing of the training loop, so repeated
//! products are products with one matrix. Parameters travel as one flat host vector, theta
//! (generator tensors in order) then phi (discriminator tensors in order); this is the order
//! of rows and columns of the Jacobian J = dv/d(theta, phi).
//!
//! Exactness: v is computed one autodiff level above the probe backend B (its backward
//! arithmetic is recorded by B), and the gradient of v . w taken by B is J^T w, which has the
//! eigenvalues of J. Input-gradient penalties nest one more level inside (see
//! `game::penalty`). A fresh forward pass is built for every product: burn walks a graph once.
//!
//! Small games spend their time in per-operation overhead, not arithmetic, so many products
//! share one graph: the parameters are stacked as copies along a leading dimension (rank-3
//! tensors, see `Net::forward`), one copy per product or per point.

use burn::backend::Autodiff;
use burn::tensor::{backend::Backend, DType, Tensor, TensorCreationOptions, TensorData};

use crate::backend::{host, matrix_in, GanBackend};
use crate::game::Game;
use crate::nets::ParamSpec;
use crate::spec::{BackendKind, ProbeDevice};

/// Relative step of the finite-difference product: the cube root of f64's epsilon, which
/// balances the truncation error (h^2) of central differences against rounding (eps / h).
pub const FD_STEP: f64 = 6.055454452393343e-6;

/// A game at a fixed probe batch.
#[derive(Debug, Clone)]
pub struct GameField {
    pub game: Game,
    /// Real rows, row-major `n x x_dim`.
    pub real: Vec<f64>,
    /// Latent rows, row-major `n x z_dim`.
    pub z: Vec<f64>,
    /// WGAN-GP interpolation weights, one per row, when the objective needs them.
    pub eps: Option<Vec<f64>>,
    pub x_dim: usize,
    /// Columns of a latent row: the latent dimension, plus dim(x) under instance noise (the
    /// row's fake-sample noise, see `Game::fake`).
    pub z_dim: usize,
    pub theta: Vec<ParamSpec>,
    pub phi: Vec<ParamSpec>,
    /// Under instance noise: the batch without noise and unit noise for it, so the field can
    /// be set to the noise std of any step ([`GameField::at_noise_std`]).
    pub noise: Option<ProbeNoise>,
    /// Under spectral normalisation, the vectors the discriminator's weights are normalised
    /// with at the probed step ([`GameField::with_spectral`]); v and J include the
    /// derivative through sigma, as the training step does.
    pub spectral: Option<crate::game::spectral::SpectralVectors>,
    /// Where the products run (see `probe::on_probe_backend`).
    pub on: ProbeOn,
}

/// The backend a probe's products run on: the CPU in f64 (`probe.device = "cpu"`, or a CPU
/// trial), or a GPU trial's own backend in f32 (`probe.device = "trial"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOn {
    Cpu,
    Cuda,
    Wgpu,
}

/// The probe batch's clean rows and its unit instance noise (row-major, `n x dim(x)` each).
#[derive(Debug, Clone)]
pub struct ProbeNoise {
    pub real: Vec<f64>,
    pub z: Vec<f64>,
    pub real_noise: Vec<f64>,
    pub fake_noise: Vec<f64>,
}

impl GameField {
    /// The game of a trial configuration with a probe batch of `batch` rows; builds the data
    /// set (a trial builds its field once, in its set-up).
    pub fn from_config(cfg: &crate::spec::TrialConfig, batch: usize) -> anyhow::Result<GameField> {
        let setup = crate::setup::TrialSetup::new(cfg)?;
        Ok(GameField::new(cfg, &setup.data, setup.game, batch))
    }

    /// `game` on a probe batch of `batch` rows of `data` drawn from the trial's `Probe` stream,
    /// so every probe of a trial, and every later `ganlab probe` of it, sees the same batch.
    pub fn new(
        cfg: &crate::spec::TrialConfig,
        data: &crate::data::Dataset,
        game: Game,
        batch: usize,
    ) -> GameField {
        use rand::Rng;
        let mut rng = crate::rng::stream(cfg.seed, crate::rng::Stream::Probe);
        let real = data.sample(&mut rng, batch);
        let z = crate::data::sample_latent(&cfg.latent, &mut rng, batch);
        let eps = game.needs_interpolation().then(|| {
            (0..game.judged_rows(batch))
                .map(|_| rng.random::<f64>())
                .collect()
        });
        // Drawn after the rest, so a game without noise keeps its probe batch.
        let noise = game.noisy().then(|| ProbeNoise {
            real_noise: crate::train::gaussian(&mut rng, real.len(), 1.0),
            fake_noise: crate::train::gaussian(&mut rng, real.len(), 1.0),
            real: real.clone(),
            z: z.clone(),
        });
        let std = game.noise_std(0);
        let field = GameField {
            theta: game.generator.param_specs(),
            phi: game.discriminator.param_specs(),
            game,
            real,
            z,
            eps,
            x_dim: data.dim(),
            z_dim: cfg.latent.dim,
            noise,
            spectral: None,
            on: match (cfg.probe.device, cfg.backend) {
                (ProbeDevice::Trial, BackendKind::Cuda) => ProbeOn::Cuda,
                (ProbeDevice::Trial, BackendKind::Wgpu) => ProbeOn::Wgpu,
                _ => ProbeOn::Cpu,
            },
        };
        field.at_noise_std(std)
    }

    /// The field with the discriminator's weights normalised by `spectral` (the vectors of the
    /// probed step; None: not normalised).
    pub fn with_spectral(
        mut self,
        spectral: Option<crate::game::spectral::SpectralVectors>,
    ) -> GameField {
        self.spectral = spectral;
        self
    }

    /// The discriminator's tensors as the game uses them (see [`GameField::spectral`]).
    fn discriminator_view<K: Backend, const D: usize>(
        &self,
        phi: Vec<Tensor<K, D>>,
    ) -> Vec<Tensor<K, D>> {
        match &self.spectral {
            Some(s) => s.normalised(&phi, &self.phi),
            None => phi,
        }
    }

    /// The field with the probe batch's instance noise at `std` (the field itself without
    /// instance noise).
    pub fn at_noise_std(&self, std: f64) -> GameField {
        let mut f = self.clone();
        let Some(n) = &self.noise else {
            return f;
        };
        let zd = self.game.z_dim;
        f.real = n
            .real
            .iter()
            .zip(&n.real_noise)
            .map(|(x, e)| x + std * e)
            .collect();
        f.z =
            n.z.chunks(zd)
                .zip(n.fake_noise.chunks(self.x_dim))
                .flat_map(|(z, e)| z.iter().copied().chain(e.iter().map(|e| std * e)))
                .collect();
        f.z_dim = zd + self.x_dim;
        f
    }

    /// Number of rows of the probe batch.
    pub fn batch(&self) -> usize {
        self.real.len() / self.x_dim
    }

    /// Parameters of the generator, of the discriminator, and of both.
    pub fn dims(&self) -> (usize, usize, usize) {
        let g: usize = self.theta.iter().map(ParamSpec::len).sum();
        let d: usize = self.phi.iter().map(ParamSpec::len).sum();
        (g, d, g + d)
    }

    /// How many copies of the parameters one graph carries when a probe needs many
    /// products: enough to amortise the per-operation cost of a small game, few enough that the
    /// widest activation of all copies (`copies x 2 batch x width`) stays near 2^17 scalars (1 MiB
    /// in f64, so a block's activations stay in the cores' caches).
    pub fn block_size(&self) -> usize {
        let widest = [&self.theta, &self.phi]
            .iter()
            .flat_map(|specs| specs.iter().map(|s| s.cols.max(s.rows)))
            .max()
            .unwrap_or(1)
            .max(self.x_dim);
        (BLOCK_SCALARS / (2 * self.batch() * widest).max(1)).clamp(1, MAX_BLOCK)
    }

    /// The float type of the probe's tensors: f64 on the CPU, f32 on a GPU.
    pub fn dtype(&self) -> DType {
        match self.on {
            ProbeOn::Cpu => DType::F64,
            ProbeOn::Cuda | ProbeOn::Wgpu => DType::F32,
        }
    }

    /// Host rows `rows x cols`, repeated for `copies` copies: `[copies, rows, cols]`.
    fn repeated<B: Backend>(
        &self,
        values: &[f64],
        copies: usize,
        rows: usize,
        cols: usize,
        dev: &B::Device,
    ) -> Tensor<B, 3> {
        let data = TensorData::new(values.repeat(copies), [copies, rows, cols]);
        Tensor::from_data(
            data.convert_dtype(self.dtype()),
            TensorCreationOptions::new(dev.clone()).with_dtype(self.dtype()),
        )
    }

    /// Host rows `copies x len` as a `[copies, len]` tensor.
    fn rows<B: Backend>(&self, values: Vec<f64>, len: usize, dev: &B::Device) -> Tensor<B, 2> {
        let copies = if len == 0 { 0 } else { values.len() / len };
        matrix_in::<B>(values, copies, len, dev, self.dtype())
    }

    /// A player's flat parameters `[copies, len]` cut into its tensors `[copies, rows, cols]`.
    fn split<B: Backend>(flat: &Tensor<B, 2>, specs: &[ParamSpec]) -> Vec<Tensor<B, 3>> {
        let [copies, _] = flat.dims();
        let mut at = 0;
        specs
            .iter()
            .map(|s| {
                let t = flat
                    .clone()
                    .narrow(1, at, s.len())
                    .reshape([copies, s.rows, s.cols]);
                at += s.len();
                t
            })
            .collect()
    }

    /// The parts of v for every copy: `theta` is `[copies, g]`, `phi` `[copies, d]` (tensors
    /// of B, possibly tracked by B); the generator's part is `[copies, g]` and the
    /// discriminator's `[copies, d]`, differentiable by B, each built only when asked for. Each
    /// copy sees the whole probe batch; copies never mix, so row c is v at copy c's parameters.
    fn field_parts<B: GanBackend>(
        &self,
        theta: Tensor<B, 2>,
        phi: Tensor<B, 2>,
        parts: Parts,
        dev: &B::Device,
    ) -> (Option<Tensor<B, 2>>, Option<Tensor<B, 2>>) {
        type Up<B> = Autodiff<B>;
        let n = self.batch();
        let [copies, _] = theta.dims();
        let z = || self.repeated::<B>(&self.z, copies, n, self.z_dim, dev);
        // Each player's leaf is its flat [copies, len] tensor, so its part of v comes out flat.
        let leaf = |t: &Tensor<B, 2>| Tensor::<Up<B>, 2>::from_inner(t.clone()).require_grad();

        // grad_theta L_G, with phi held at its value.
        let v_theta = parts.generator.then(|| {
            let theta_up = leaf(&theta);
            let tensors = Self::split(&theta_up, &self.theta);
            let phi = self.discriminator_view(Self::split(&phi, &self.phi));
            let part =
                self.game
                    .generator_part(std::slice::from_ref(&theta_up), &tensors, &phi, z());
            part.grads
                .into_iter()
                .next()
                .unwrap_or_else(|| theta.zeros_like())
        });

        // grad_phi L_D, with the fake rows depending on theta (at B's level only).
        let v_phi = parts.discriminator.then(|| {
            let phi_up = leaf(&phi);
            let tensors = self.discriminator_view(Self::split(&phi_up, &self.phi));
            let real = self.repeated::<B>(&self.real, copies, n, self.x_dim, dev);
            let eps = self
                .eps
                .as_ref()
                .map(|e| self.repeated::<B>(e, copies, e.len(), 1, dev));
            let part = self.game.discriminator_part(
                &Self::split(&theta, &self.theta),
                std::slice::from_ref(&phi_up),
                &tensors,
                real,
                z(),
                eps,
            );
            part.grads
                .into_iter()
                .next()
                .unwrap_or_else(|| phi.zeros_like())
        });
        (v_theta, v_phi)
    }

    /// v at every point of `points` (row-major, one point of theta then phi per row), all in
    /// one graph; the result has the same layout.
    pub fn fields<B: GanBackend>(&self, points: &[f64], dev: &B::Device) -> Vec<f64> {
        let (g, d, n) = self.dims();
        if n == 0 || points.is_empty() {
            return Vec::new();
        }
        let (theta, phi) = split_rows(points, g, d);
        let parts = self.field_parts(
            self.rows::<B>(theta, g, dev),
            self.rows::<B>(phi, d, dev),
            Parts::BOTH,
            dev,
        );
        match parts {
            (Some(a), Some(b)) => join_rows(&host(a), &host(b), g, d),
            _ => unreachable!("both parts were asked for"),
        }
    }

    /// J(p)^T w for every row w of `ws` (row-major), from one graph holding a copy of p per
    /// row: the gradient of sum_c v(p_c) . w_c with respect to copy c is J(p)^T w_c. The
    /// result has the layout of `ws`.
    pub fn vjps<B: GanBackend>(&self, p: &[f64], ws: &[f64], dev: &B::Device) -> Vec<f64> {
        let (g, d, _) = self.dims();
        let (w_theta, w_phi) = split_rows(ws, g, d);
        self.player_vjps::<B>(p, Some(&w_theta), Some(&w_phi), dev)
    }

    /// J(p)^T w for w zero outside one player's block: `w_theta` (rows of g) or `w_phi` (rows
    /// of d) or both. Only the graphs of the players with a w are built, which halves the work
    /// of the Jacobian's rows and of the Hessians' products. Rows of `g + d`, row-major.
    pub fn player_vjps<B: GanBackend>(
        &self,
        p: &[f64],
        w_theta: Option<&[f64]>,
        w_phi: Option<&[f64]>,
        dev: &B::Device,
    ) -> Vec<f64> {
        let (g, d, n) = self.dims();
        let copies = match (w_theta, w_phi) {
            (Some(w), _) if g > 0 => w.len() / g,
            (_, Some(w)) if d > 0 => w.len() / d,
            _ => 0,
        };
        if n == 0 || copies == 0 {
            return Vec::new();
        }
        let (theta, phi) = split_rows(&p.repeat(copies), g, d);
        let theta = self.rows::<B>(theta, g, dev).require_grad();
        let phi = self.rows::<B>(phi, d, dev).require_grad();
        let parts = Parts {
            generator: w_theta.is_some(),
            discriminator: w_phi.is_some(),
        };
        let (v_theta, v_phi) = self.field_parts(theta.clone(), phi.clone(), parts, dev);
        let dot = |v: Option<Tensor<B, 2>>, w: Option<&[f64]>, len: usize| {
            v.zip(w)
                .map(|(v, w)| (v * self.rows::<B>(w.to_vec(), len, dev)).sum())
        };
        let dot = match (dot(v_theta, w_theta, g), dot(v_phi, w_phi, d)) {
            (Some(a), Some(b)) => a + b,
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => return vec![0.0; copies * n],
        };
        let grads = dot.backward();
        let part = |t: &Tensor<B, 2>, len: usize| match t.grad(&grads) {
            Some(g) => host(g),
            None => vec![0.0; copies * len],
        };
        join_rows(&part(&theta, g), &part(&phi, d), g, d)
    }

    /// [`GameField::player_vjps`] for rows `ws` on the generator's block (`generator`) or on
    /// the discriminator's.
    pub fn block_vjps<B: GanBackend>(
        &self,
        p: &[f64],
        generator: bool,
        ws: &[f64],
        dev: &B::Device,
    ) -> Vec<f64> {
        match generator {
            true => self.player_vjps::<B>(p, Some(ws), None, dev),
            false => self.player_vjps::<B>(p, None, Some(ws), dev),
        }
    }

    /// J(p)^T w: the gradient of v(p) . w.
    pub fn vjp<B: GanBackend>(&self, p: &[f64], w: &[f64], dev: &B::Device) -> Vec<f64> {
        self.vjps::<B>(p, w, dev)
    }

    /// The step of the central differences at `p` along `w`:
    /// h = [`FD_STEP`] max(1, |p|) / |w|, or None when w = 0.
    fn fd_step(p: &[f64], w: &[f64]) -> Option<f64> {
        let wn = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        let pn = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        (wn > 0.0).then(|| FD_STEP * pn.max(1.0) / wn)
    }

    /// J(p) w for every row w of `ws` (row-major) by central differences of the field, all
    /// 2 k points in one graph: (v(p + h w) - v(p - h w)) / (2 h) with h from
    /// [`GameField::fd_step`]. The same eigenvalues as the exact J^T w, to within O(h^2); kept
    /// as a cross-check of the exact product and as `probe.product = "finite_difference"`.
    pub fn jvp_fd<B: GanBackend>(&self, p: &[f64], ws: &[f64], dev: &B::Device) -> Vec<f64> {
        let n = p.len();
        if n == 0 || ws.is_empty() {
            return Vec::new();
        }
        let steps: Vec<Option<f64>> = ws.chunks(n).map(|w| Self::fd_step(p, w)).collect();
        let mut points = Vec::with_capacity(2 * ws.len());
        for (w, h) in ws.chunks(n).zip(&steps) {
            let h = h.unwrap_or(0.0);
            for s in [1.0, -1.0] {
                points.extend(p.iter().zip(w).map(|(a, b)| a + s * h * b));
            }
        }
        let v = self.fields::<B>(&points, dev);
        v.chunks(2 * n)
            .zip(&steps)
            .flat_map(|(pm, h)| {
                let (plus, minus) = pm.split_at(n);
                plus.iter().zip(minus).map(move |(a, b)| match h {
                    Some(h) => (a - b) / (2.0 * h),
                    None => 0.0,
                })
            })
            .collect()
    }

    /// J(p) by central differences, row-major `n x n`, assembled from [`GameField::jvp_fd`]
    /// on the unit vectors, [`GameField::block_size`] columns per graph.
    pub fn jacobian_fd<B: GanBackend>(&self, p: &[f64], dev: &B::Device) -> Vec<f64> {
        let n = p.len();
        let block = self.block_size();
        let mut jac = vec![0.0; n * n];
        for j0 in (0..n).step_by(block) {
            let cols = unit_rows(n, j0, block.min(n - j0));
            for (c, col) in self.jvp_fd::<B>(p, &cols, dev).chunks(n).enumerate() {
                for (i, v) in col.iter().enumerate() {
                    jac[i * n + j0 + c] = *v;
                }
            }
        }
        jac
    }

    /// The whole Jacobian J(p), row-major `n x n`: row i is J^T e_i, and `block` rows come
    /// from one graph (see [`GameField::vjps`]). Copies never mix, so J does not depend on
    /// the block size or on the number of threads.
    pub fn jacobian_blocked<B: GanBackend>(
        &self,
        p: &[f64],
        block: usize,
        dev: &B::Device,
    ) -> Vec<f64>
    where
        B::Device: Sync,
    {
        use rayon::prelude::*;
        let (g, d, n) = self.dims();
        let block = block.max(1);
        let mut jac = vec![0.0; n * n];
        // Row i of J is J^T e_i; e_i lies in one player's block, so each block of rows needs
        // only that player's part of v. Blocks write straight into their rows of J.
        let (rows_g, rows_d) = jac.split_at_mut(g * n);
        for (rows, generator, len) in [(rows_g, true, g), (rows_d, false, d)] {
            rows.par_chunks_mut(block * n)
                .enumerate()
                .for_each(|(b, out)| {
                    let w = unit_rows(len, b * block, out.len() / n);
                    out.copy_from_slice(&self.block_vjps::<B>(p, generator, &w, dev));
                });
        }
        jac
    }

    /// [`GameField::jacobian_blocked`] with [`GameField::block_size`] rows per graph.
    pub fn jacobian<B: GanBackend>(&self, p: &[f64], dev: &B::Device) -> Vec<f64>
    where
        B::Device: Sync,
    {
        self.jacobian_blocked::<B>(p, self.block_size(), dev)
    }
}

/// Which players' parts of v a graph builds.
#[derive(Debug, Clone, Copy)]
struct Parts {
    generator: bool,
    discriminator: bool,
}

impl Parts {
    const BOTH: Parts = Parts {
        generator: true,
        discriminator: true,
    };
}

/// Scalars of the widest activation that one block of copies may hold (see
/// [`GameField::block_size`]), and the most copies per graph. Measured with `ganlab bench
/// --spectrum` (Jacobian seconds, 2 cores): 2^20 gave 64 / 64 / 32 copies at widths 16 / 32 /
/// 64 and 0.4-0.5 / 3.3-3.9 / 26 s; 2^17 gives 16 / 8 / 4 copies and 0.4 / 2.6-2.8 / 21 s.
const BLOCK_SCALARS: usize = 1 << 17;
const MAX_BLOCK: usize = 64;

/// Points of `g + d` scalars (row-major) cut into their theta rows and their phi rows.
fn split_rows(points: &[f64], g: usize, d: usize) -> (Vec<f64>, Vec<f64>) {
    let mut theta = Vec::with_capacity(points.len() / (g + d) * g);
    let mut phi = Vec::with_capacity(points.len() / (g + d) * d);
    for row in points.chunks(g + d) {
        theta.extend_from_slice(&row[..g]);
        phi.extend_from_slice(&row[g..]);
    }
    (theta, phi)
}

/// The inverse of [`split_rows`].
fn join_rows(theta: &[f64], phi: &[f64], g: usize, d: usize) -> Vec<f64> {
    let copies = if g > 0 {
        theta.len() / g
    } else {
        phi.len() / d
    };
    let mut out = Vec::with_capacity(theta.len() + phi.len());
    for c in 0..copies {
        out.extend_from_slice(&theta[c * g..(c + 1) * g]);
        out.extend_from_slice(&phi[c * d..(c + 1) * d]);
    }
    out
}

/// The unit vectors e_first .. e_{first+k-1} of length n, row-major.
fn unit_rows(n: usize, first: usize, k: usize) -> Vec<f64> {
    let mut rows = vec![0.0; k * n];
    for r in 0..k {
        rows[r * n + first + r] = 1.0;
    }
    rows
}
