//! Training: the update schemes over a [`Game`], and the per-step records.
//!
//! A step is `n_critic` discriminator updates and one generator update. Under `simultaneous`
//! the last discriminator update and the generator update use gradients taken at the same
//! point and on the same batch; under `alternating` the generator sees the updated
//! discriminator. The row recorded for step k holds the losses and gradient norms measured
//! before the updates of step k (k = 0 is the initial point), gradient norms before clipping.

pub mod optim;
pub mod trial;

use burn::tensor::{backend::AutodiffBackend, Tensor};
use rand_chacha::ChaCha8Rng;

use crate::backend::{host, matrix, GanBackend};
use crate::data::{sample_latent, Dataset};
use crate::game::Game;
use crate::nets::Player;
use crate::rng::{stream, Stream};
use crate::spec::{Loss, TrialConfig, UpdateScheme};
pub use optim::Optimizer;

/// Plain (untracked) backend of a training backend.
pub type Inner<B> = <B as AutodiffBackend>::InnerBackend;

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
}

/// Discriminator-side measurements of one update.
struct DStats {
    loss_d: f64,
    d_real: f64,
    d_fake: f64,
    grad_sq_d: Vec<f64>,
}

/// A game being trained, with its optimisers and random streams.
pub struct Trainer<B: GanBackend> {
    pub cfg: TrialConfig,
    pub device: B::Device,
    pub game: Game,
    pub data: Dataset,
    pub generator: Player<Inner<B>>,
    pub discriminator: Player<Inner<B>>,
    pub opt_g: Optimizer<Inner<B>>,
    pub opt_d: Optimizer<Inner<B>>,
    rng_data: ChaCha8Rng,
    rng_latent: ChaCha8Rng,
    rng_penalty: ChaCha8Rng,
}

fn lift<B: GanBackend>(params: &[Tensor<Inner<B>, 2>], track: bool) -> Vec<Tensor<B, 2>> {
    params
        .iter()
        .map(|p| {
            let t = Tensor::<B, 2>::from_inner(p.clone());
            if track {
                t.require_grad()
            } else {
                t
            }
        })
        .collect()
}

fn grads_of<B: GanBackend>(
    params: &[Tensor<B, 2>],
    grads: &B::Gradients,
) -> Vec<Tensor<Inner<B>, 2>> {
    params
        .iter()
        .map(|p| {
            p.grad(grads)
                .unwrap_or_else(|| p.clone().inner().zeros_like())
        })
        .collect()
}

fn sq_norms<B: burn::tensor::backend::Backend>(grads: &[Tensor<B, 2>]) -> Vec<Tensor<B, 1>> {
    grads.iter().map(|g| g.clone().square().sum()).collect()
}

/// The threads that compute the two players' gradients of one step. A pool of its own, as
/// wide as the machine, so that a study running one trial at a time (`--jobs 1`, whose trial
/// runs in a one-thread pool) still uses both sides of the step at once.
fn step_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("ganlab-step-{i}"))
            .build()
            .unwrap_or_else(|e| panic!("cannot start the step threads: {e}"))
    })
}

/// Reads scalars off the device in one transfer.
fn read<B: burn::tensor::backend::Backend>(scalars: Vec<Tensor<B, 1>>) -> Vec<f64> {
    host(Tensor::cat(scalars, 0))
}

impl<B: GanBackend> Trainer<B> {
    /// Builds the game a configuration names and initialises both players from its seed.
    pub fn new(cfg: &TrialConfig, device: B::Device) -> anyhow::Result<Self> {
        let data = Dataset::from_config(&cfg.data)?;
        let game = Game::new(cfg, data.dim());
        let generator = Player::init(
            game.generator.clone(),
            &mut stream(cfg.seed, Stream::InitGenerator),
            &device,
        );
        let discriminator = Player::init(
            game.discriminator.clone(),
            &mut stream(cfg.seed, Stream::InitDiscriminator),
            &device,
        );
        let opt_g = Optimizer::new(cfg.train.opt_g.clone(), generator.params.len());
        let opt_d = Optimizer::new(cfg.train.opt_d.clone(), discriminator.params.len());
        Ok(Trainer {
            cfg: cfg.clone(),
            device,
            game,
            data,
            generator,
            discriminator,
            opt_g,
            opt_d,
            rng_data: stream(cfg.seed, Stream::Data),
            rng_latent: stream(cfg.seed, Stream::Latent),
            rng_penalty: stream(cfg.seed, Stream::Penalty),
        })
    }

    fn real_batch(&mut self) -> Tensor<B, 2> {
        let n = self.cfg.train.batch;
        let x = self.data.sample(&mut self.rng_data, n);
        Tensor::from_inner(matrix::<Inner<B>>(x, n, self.data.dim(), &self.device))
    }

    fn latent_batch(&mut self, n: usize) -> Tensor<Inner<B>, 2> {
        let z = sample_latent(
            self.cfg.latent.prior,
            &mut self.rng_latent,
            n,
            self.cfg.latent.dim,
        );
        matrix::<Inner<B>>(z, n, self.cfg.latent.dim, &self.device)
    }

    fn interpolation_weights(&mut self) -> Option<Tensor<B, 2>> {
        use rand::Rng;
        if !self.game.needs_interpolation() {
            return None;
        }
        let n = self.cfg.train.batch;
        let eps: Vec<f64> = (0..n).map(|_| self.rng_penalty.random::<f64>()).collect();
        Some(Tensor::from_inner(matrix::<Inner<B>>(
            eps,
            n,
            1,
            &self.device,
        )))
    }

    /// Generated rows for `n` fresh latent samples of the `Eval` stream (untracked).
    pub fn generate(&self, z: Vec<f64>, n: usize) -> Vec<f64> {
        let z = matrix::<Inner<B>>(z, n, self.cfg.latent.dim, &self.device);
        host(self.generator.net.forward(&self.generator.params, z))
    }

    fn clip_discriminator(&mut self) {
        if self.game.objective.loss == Loss::WganClip {
            let c = self.game.objective.clip;
            for p in &mut self.discriminator.params {
                *p = p.clone().clamp(-c, c);
            }
        }
    }

    /// One discriminator update against the current generator.
    fn discriminator_update(&mut self) -> DStats {
        let real = self.real_batch();
        let z = self.latent_batch(self.cfg.train.batch);
        let eps = self.interpolation_weights();
        // The generator is not differentiated here: run it untracked.
        let fake = Tensor::from_inner(self.generator.net.forward(&self.generator.params, z));
        let phi = lift::<B>(&self.discriminator.params, true);
        let d = self.game.discriminator_loss(&phi, real, fake, eps);
        let grads = d.loss.backward();
        let g_phi = grads_of(&phi, &grads);
        let mut scalars = vec![d.loss.inner(), d.d_real.inner(), d.d_fake.inner()];
        scalars.extend(sq_norms(&g_phi));
        let v = read(scalars);
        self.opt_d.step(&mut self.discriminator.params, g_phi);
        self.clip_discriminator();
        DStats {
            loss_d: v[0],
            d_real: v[1],
            d_fake: v[2],
            grad_sq_d: v[3..].to_vec(),
        }
    }

    /// One generator update against the current discriminator: (loss_g, grad_sq_g).
    fn generator_update(&mut self) -> (f64, Vec<f64>) {
        let z = Tensor::from_inner(self.latent_batch(self.cfg.train.batch));
        let theta = lift::<B>(&self.generator.params, true);
        let phi = lift::<B>(&self.discriminator.params, false);
        let fake = self.generator.net.forward(&theta, z);
        let (loss_g, _) = self.game.generator_loss(&phi, fake);
        let grads = loss_g.backward();
        let g_theta = grads_of(&theta, &grads);
        let mut scalars = vec![loss_g.inner()];
        scalars.extend(sq_norms(&g_theta));
        let v = read(scalars);
        self.opt_g.step(&mut self.generator.params, g_theta);
        (v[0], v[1..].to_vec())
    }

    /// Both gradients at the current point and on one batch, then both updates.
    ///
    /// The two gradients come from two independent graphs, built and walked on two threads:
    /// grad_phi L_D (with the fake rows as constants) and grad_theta L_G (with phi as
    /// constants). Each graph is computed by one thread in a fixed order, so the numbers do
    /// not depend on how the threads are scheduled.
    fn simultaneous_update(&mut self) -> StepStats {
        let real = self.real_batch();
        let z = self.latent_batch(self.cfg.train.batch);
        let eps = self.interpolation_weights();
        let (game, gen, disc) = (&self.game, &self.generator, &self.discriminator);
        let z_d = z.clone();
        let (d_side, g_side) = step_pool().join(
            move || {
                let fake = Tensor::from_inner(gen.net.forward(&gen.params, z_d));
                let phi = lift::<B>(&disc.params, true);
                let d = game.discriminator_loss(&phi, real, fake, eps);
                let g_phi = grads_of(&phi, &d.loss.backward());
                let mut scalars = vec![d.loss.inner(), d.d_real.inner(), d.d_fake.inner()];
                scalars.extend(sq_norms(&g_phi));
                (read(scalars), g_phi)
            },
            move || {
                let theta = lift::<B>(&gen.params, true);
                let phi = lift::<B>(&disc.params, false);
                let fake = gen.net.forward(&theta, Tensor::from_inner(z));
                let (loss_g, _) = game.generator_loss(&phi, fake);
                let g_theta = grads_of(&theta, &loss_g.backward());
                let mut scalars = vec![loss_g.inner()];
                scalars.extend(sq_norms(&g_theta));
                (read(scalars), g_theta)
            },
        );
        let ((vd, g_phi), (vg, g_theta)) = (d_side, g_side);
        self.opt_d.step(&mut self.discriminator.params, g_phi);
        self.clip_discriminator();
        self.opt_g.step(&mut self.generator.params, g_theta);
        StepStats {
            loss_g: vg[0],
            loss_d: vd[0],
            d_real: vd[1],
            d_fake: vd[2],
            grad_sq_g: vg[1..].to_vec(),
            grad_sq_d: vd[3..].to_vec(),
        }
    }

    /// One training step (see the module documentation).
    pub fn step(&mut self) -> StepStats {
        let n_critic = self.cfg.train.n_critic;
        match self.cfg.train.update {
            UpdateScheme::Simultaneous => {
                for _ in 1..n_critic {
                    self.discriminator_update();
                }
                self.simultaneous_update()
            }
            UpdateScheme::Alternating => {
                let mut d = self.discriminator_update();
                for _ in 1..n_critic {
                    d = self.discriminator_update();
                }
                let (loss_g, grad_sq_g) = self.generator_update();
                StepStats {
                    loss_g,
                    loss_d: d.loss_d,
                    d_real: d.d_real,
                    d_fake: d.d_fake,
                    grad_sq_g,
                    grad_sq_d: d.grad_sq_d,
                }
            }
        }
    }

    /// All parameter values, generator first, as host vectors (one per tensor).
    pub fn parameter_values(&self) -> (Vec<Vec<f64>>, Vec<Vec<f64>>) {
        let g = self
            .generator
            .params
            .iter()
            .map(|p| host(p.clone()))
            .collect();
        let d = self
            .discriminator
            .params
            .iter()
            .map(|p| host(p.clone()))
            .collect();
        (g, d)
    }
}
