//! Training: the game's field on the training backend ([`TrainingField`]), the trial state it
//! changes ([`state::TrialState`]: parameters, optimisers, streams), and the update schemes
//! that step one with the other ([`scheme`]).
//!
//! A step is `n_critic` discriminator updates and one generator update; how they are ordered
//! is the scheme's. The row recorded for step k holds the losses and gradient norms measured
//! before the updates of step k (k = 0 is the initial point), gradient norms before clipping.

pub mod batched;
pub mod drift;
pub mod flow;
pub mod optim;
pub mod scheme;
pub mod spectral;
pub mod state;

use burn::tensor::{backend::Backend, Tensor};
use rand::Rng;

use crate::backend::{host, matrix, GanBackend};
use crate::data::sample_latent;
pub use crate::game::field::Inner;
use crate::game::field::{DiscriminatorPart, GeneratorPart};
use crate::game::spectral::SpectralVectors;
use crate::setup::TrialSetup;
use crate::spec::{Loss, TrialConfig};
pub use optim::Optimizer;
use scheme::UpdateScheme;
use state::{Streams, TrialState};

/// What one step measured.
#[derive(Debug, Clone, PartialEq)]
pub struct StepStats {
    pub loss_g: f64,
    pub loss_d: f64,
    pub d_real: f64,
    pub d_fake: f64,
    /// Squared Euclidean norm of each generator parameter tensor's gradient.
    pub grad_sq_g: Vec<f64>,
    /// Squared Euclidean norm of each discriminator parameter tensor's gradient.
    pub grad_sq_d: Vec<f64>,
    /// The gradient flow's clock, for the schemes that integrate it (`rk4`, `rk45`).
    pub flow: Option<FlowStats>,
    /// Distance to the gradient flow from the same start at the same time (`record.drift`).
    pub drift: Option<f64>,
}

/// Where a flow integrator's step started in time, how long it was, and how many attempts
/// the error control rejected before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlowStats {
    pub time: f64,
    pub step_size: f64,
    pub rejected: u32,
}

/// Discriminator-side measurements of one update.
#[derive(Debug, Clone, PartialEq)]
pub struct DStats {
    pub loss_d: f64,
    pub d_real: f64,
    pub d_fake: f64,
    pub grad_sq_d: Vec<f64>,
}

/// Generator-side measurements of one update.
#[derive(Debug, Clone, PartialEq)]
pub struct GStats {
    pub loss_g: f64,
    pub grad_sq_g: Vec<f64>,
}

impl StepStats {
    /// A step's record from its last discriminator and generator measurements.
    pub fn of(d: DStats, g: GStats) -> StepStats {
        StepStats {
            loss_g: g.loss_g,
            loss_d: d.loss_d,
            d_real: d.d_real,
            d_fake: d.d_fake,
            grad_sq_g: g.grad_sq_g,
            grad_sq_d: d.grad_sq_d,
            flow: None,
            drift: None,
        }
    }

    /// The record with a flow integrator's clock.
    pub fn with_flow(mut self, flow: FlowStats) -> StepStats {
        self.flow = Some(flow);
        self
    }
}

/// One batch of the discriminator's loss: real rows, latent rows for the fake ones, and the
/// WGAN-GP interpolation weights when the objective needs them.
pub struct Batch<B: Backend> {
    pub real: Tensor<B, 2>,
    pub z: Tensor<B, 2>,
    pub eps: Option<Tensor<B, 2>>,
}

/// A [`Batch`]'s numbers on the host, row-major: real rows, latent rows, interpolation weights.
pub struct HostBatch {
    pub real: Vec<f64>,
    pub z: Vec<f64>,
    pub eps: Option<Vec<f64>>,
}

impl<B: Backend> Clone for Batch<B> {
    fn clone(&self) -> Self {
        Batch {
            real: self.real.clone(),
            z: self.z.clone(),
            eps: self.eps.clone(),
        }
    }
}

/// The game's vector field on the training backend: the trial set-up, the device, and the
/// batches each update draws from the trial's streams.
pub struct TrainingField<B: GanBackend> {
    pub setup: TrialSetup,
    pub device: B::Device,
    /// Under spectral normalisation, the power iteration's vectors this step normalises the
    /// discriminator's weights with (set from the trial state by [`Trainer::step`]).
    pub spectral: Option<SpectralVectors>,
}

/// `n` draws of N(0, std^2) (drawn even when std is 0, so the stream does not depend on it).
pub(crate) fn gaussian<R: Rng>(rng: &mut R, n: usize, std: f64) -> Vec<f64> {
    use rand_distr::{Distribution, StandardNormal};
    (0..n)
        .map(|_| {
            let e: f64 = StandardNormal.sample(rng);
            std * e
        })
        .collect()
}

fn sq_norms<B: Backend>(grads: &[Tensor<B, 2>]) -> Vec<Tensor<B, 1>> {
    grads.iter().map(|g| g.clone().square().sum()).collect()
}

/// Reads scalars off the device in one transfer.
pub(crate) fn read<B: Backend>(scalars: Vec<Tensor<B, 1>>) -> Vec<f64> {
    host(Tensor::cat(scalars, 0))
}

pub(crate) fn lift<B: GanBackend>(params: &[Tensor<Inner<B>, 2>]) -> Vec<Tensor<B, 2>> {
    params
        .iter()
        .map(|p| Tensor::<B, 2>::from_inner(p.clone()).require_grad())
        .collect()
}

impl<B: GanBackend> TrainingField<B> {
    pub fn cfg(&self) -> &TrialConfig {
        &self.setup.cfg
    }

    /// The discriminator's tensors as the game uses them: spectrally normalised when the
    /// objective asks for it (differentiable through sigma where `phi` is tracked), else
    /// `phi` itself.
    pub fn discriminator_view<K: Backend>(&self, phi: &[Tensor<K, 2>]) -> Vec<Tensor<K, 2>> {
        match &self.spectral {
            Some(s) => s.normalised(phi, &self.setup.field.phi),
            None => phi.to_vec(),
        }
    }

    /// Columns of a latent row: the latent dimension, and under instance noise the noise of
    /// its fake sample after it.
    pub fn latent_cols(&self) -> usize {
        let dim = self.cfg().latent.dim;
        if self.setup.game.noisy() {
            dim + self.setup.data.dim()
        } else {
            dim
        }
    }

    /// A batch of latent rows from the `latent` stream, for step `step`; under instance noise
    /// each row also carries the noise of its fake sample (see `Game::fake`).
    pub fn latent_batch(&self, step: u64, streams: &mut Streams, n: usize) -> Tensor<Inner<B>, 2> {
        let rows = self.latent_rows(step, streams, n);
        matrix::<Inner<B>>(rows, n, self.latent_cols(), &self.device)
    }

    /// [`TrainingField::latent_batch`]'s rows on the host, `n x latent_cols()`.
    pub fn latent_rows(&self, step: u64, streams: &mut Streams, n: usize) -> Vec<f64> {
        let dim = self.cfg().latent.dim;
        let z = sample_latent(&self.cfg().latent, &mut streams.latent, n);
        let game = &self.setup.game;
        if !game.noisy() {
            return z;
        }
        let x_dim = self.setup.data.dim();
        let noise = gaussian(&mut streams.noise, n * x_dim, game.noise_std(step));
        z.chunks(dim)
            .zip(noise.chunks(x_dim))
            .flat_map(|(a, b)| a.iter().chain(b).copied())
            .collect()
    }

    /// A batch for the discriminator's loss at step `step` (real rows, with their instance
    /// noise added; latent rows; interpolation weights).
    pub fn batch(&self, step: u64, streams: &mut Streams) -> Batch<Inner<B>> {
        let n = self.cfg().train.batch;
        let h = self.host_batch(step, streams);
        let eps = h.eps.map(|e| {
            let rows = e.len();
            matrix::<Inner<B>>(e, rows, 1, &self.device)
        });
        Batch {
            real: matrix::<Inner<B>>(h.real, n, self.setup.data.dim(), &self.device),
            z: matrix::<Inner<B>>(h.z, n, self.latent_cols(), &self.device),
            eps,
        }
    }

    /// [`TrainingField::batch`]'s numbers on the host, drawn in the same order.
    pub fn host_batch(&self, step: u64, streams: &mut Streams) -> HostBatch {
        let n = self.cfg().train.batch;
        let dim = self.setup.data.dim();
        let mut real = self.setup.data.sample(&mut streams.data, n);
        let game = &self.setup.game;
        if game.noisy() {
            let noise = gaussian(&mut streams.noise, n * dim, game.noise_std(step));
            real.iter_mut().zip(noise).for_each(|(a, e)| *a += e);
        }
        let z = self.latent_rows(step, streams, n);
        let eps = game.needs_interpolation().then(|| {
            (0..game.judged_rows(n))
                .map(|_| streams.penalty.random::<f64>())
                .collect()
        });
        HostBatch { real, z, eps }
    }

    /// grad_phi L_D at (theta, phi) on `batch`, with its measurements read to the host.
    pub fn discriminator_gradient(
        &self,
        theta: &[Tensor<Inner<B>, 2>],
        phi: &[Tensor<Inner<B>, 2>],
        batch: Batch<Inner<B>>,
    ) -> (DStats, Vec<Tensor<Inner<B>, 2>>) {
        let leaves = lift::<B>(phi);
        let part: DiscriminatorPart<B, 2> = self.setup.game.discriminator_part(
            theta,
            &leaves,
            &self.discriminator_view(&leaves),
            batch.real,
            batch.z,
            batch.eps,
        );
        let mut scalars = vec![part.loss, part.d_real, part.d_fake];
        scalars.extend(sq_norms(&part.grads));
        let v = read(scalars);
        let stats = DStats {
            loss_d: v[0],
            d_real: v[1],
            d_fake: v[2],
            grad_sq_d: v[3..].to_vec(),
        };
        (stats, part.grads)
    }

    /// grad_theta L_G at (theta, phi) for latent rows `z`, with its measurements.
    pub fn generator_gradient(
        &self,
        theta: &[Tensor<Inner<B>, 2>],
        phi: &[Tensor<Inner<B>, 2>],
        z: Tensor<Inner<B>, 2>,
    ) -> (GStats, Vec<Tensor<Inner<B>, 2>>) {
        let leaves = lift::<B>(theta);
        let part: GeneratorPart<B, 2> =
            self.setup
                .game
                .generator_part(&leaves, &leaves, &self.discriminator_view(phi), z);
        let mut scalars = vec![part.loss];
        scalars.extend(sq_norms(&part.grads));
        let v = read(scalars);
        let stats = GStats {
            loss_g: v[0],
            grad_sq_g: v[1..].to_vec(),
        };
        (stats, part.grads)
    }

    /// The objective's constraint on the discriminator after each of its updates: weight
    /// clipping for `wgan_clip`.
    pub fn constrain_discriminator(&self, phi: &mut [Tensor<Inner<B>, 2>]) {
        let o = &self.setup.game.objective;
        if o.loss == Loss::WganClip {
            for p in phi {
                *p = p.clone().clamp(-o.clip, o.clip);
            }
        }
    }
}

/// A trial being trained: its field, its state and its update scheme.
pub struct Trainer<B: GanBackend> {
    pub field: TrainingField<B>,
    pub state: TrialState<Inner<B>>,
    scheme: Box<dyn UpdateScheme<B>>,
}

impl<B: GanBackend> Trainer<B> {
    /// Builds the game a configuration names and initialises both players from its seed.
    pub fn new(cfg: &TrialConfig, device: B::Device) -> anyhow::Result<Self> {
        Ok(Trainer::from_setup(TrialSetup::new(cfg)?, device))
    }

    /// A trainer at the initial point of a trial set-up.
    pub fn from_setup(setup: TrialSetup, device: B::Device) -> Self {
        let state = TrialState::initial(&setup, &device);
        let scheme = scheme::build::<B>(setup.cfg.train.update);
        Trainer {
            field: TrainingField {
                setup,
                device,
                spectral: None,
            },
            state,
            scheme,
        }
    }

    pub fn cfg(&self) -> &TrialConfig {
        &self.field.setup.cfg
    }

    pub fn setup(&self) -> &TrialSetup {
        &self.field.setup
    }

    /// One training step (see the module documentation).
    pub fn step(&mut self) -> StepStats {
        self.field.spectral = spectral::vectors(&self.field.setup, &self.state);
        let drift = self
            .cfg()
            .record
            .drift
            .then(|| drift::measure_and_advance(&self.field, &mut self.state));
        let mut stats = self.scheme.step(&self.field, &mut self.state);
        stats.drift = drift;
        self.state.step += 1;
        spectral::iterate(&self.field.setup, &mut self.state);
        stats
    }

    /// Generated rows for latent rows `z` (`n` of them), untracked (no instance noise).
    pub fn generate(&self, z: Vec<f64>, n: usize) -> Vec<f64> {
        let z = matrix::<Inner<B>>(z, n, self.cfg().latent.dim, &self.field.device);
        host(self.setup().game.generator.forward(&self.state.theta, z))
    }

    /// All parameter values, generator first, as host vectors (one per tensor).
    pub fn parameter_values(&self) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let all = |ps: &[Tensor<Inner<B>, 2>]| ps.iter().map(|p| host(p.clone())).collect();
        (all(&self.state.theta), all(&self.state.phi))
    }

    /// All parameters as one flat vector, theta then phi (the order of the game Jacobian).
    pub fn flat_parameters(&self) -> Vec<f64> {
        let (g, d) = self.parameter_values();
        g.into_iter().chain(d).flatten().collect()
    }

    /// The skip-GAN's learned alpha (the generator tensor `skip.alpha`, 1 x 1, on the trial's
    /// device), where there is one.
    pub fn learned_alpha(&self) -> Option<Tensor<Inner<B>, 2>> {
        let specs = self.setup().game.generator.param_specs();
        let i = specs.iter().position(|s| s.name == "skip.alpha")?;
        Some(self.state.theta[i].clone())
    }

    /// The learning rates in force: (generator, discriminator).
    pub fn learning_rates(&self) -> (f64, f64) {
        (self.state.opt_g.lr(), self.state.opt_d.lr())
    }
}
