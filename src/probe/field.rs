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

use burn::backend::Autodiff;
use burn::tensor::{backend::AutodiffBackend, Tensor};

use crate::backend::{host, matrix};
use crate::game::Game;
use crate::nets::ParamSpec;

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
    pub z_dim: usize,
    pub theta: Vec<ParamSpec>,
    pub phi: Vec<ParamSpec>,
}

impl GameField {
    /// The game of a trial configuration with a probe batch of `batch` rows drawn from the
    /// trial's `Probe` stream (so every probe of a trial sees the same batch).
    pub fn from_config(cfg: &crate::spec::TrialConfig, batch: usize) -> anyhow::Result<GameField> {
        use rand::Rng;
        let data = crate::data::Dataset::from_config(&cfg.data)?;
        let game = Game::new(cfg, data.dim());
        let mut rng = crate::rng::stream(cfg.seed, crate::rng::Stream::Probe);
        let real = data.sample(&mut rng, batch);
        let z = crate::data::sample_latent(cfg.latent.prior, &mut rng, batch, cfg.latent.dim);
        let eps = game
            .needs_interpolation()
            .then(|| (0..batch).map(|_| rng.random::<f64>()).collect());
        Ok(GameField {
            theta: game.generator.param_specs(),
            phi: game.discriminator.param_specs(),
            game,
            real,
            z,
            eps,
            x_dim: data.dim(),
            z_dim: cfg.latent.dim,
        })
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

    fn tensors<B: burn::tensor::backend::Backend>(
        specs: &[ParamSpec],
        flat: &[f64],
        dev: &B::Device,
    ) -> Vec<Tensor<B, 2>> {
        let mut at = 0;
        specs
            .iter()
            .map(|s| {
                let t = matrix::<B>(flat[at..at + s.len()].to_vec(), s.rows, s.cols, dev);
                at += s.len();
                t
            })
            .collect()
    }

    /// v at the parameters `theta`, `phi` (tensors of B, possibly tracked by B): one tensor
    /// per parameter tensor, theta's first, differentiable by B.
    fn field_tensors<B: AutodiffBackend>(
        &self,
        theta: &[Tensor<B, 2>],
        phi: &[Tensor<B, 2>],
        dev: &B::Device,
    ) -> Vec<Tensor<B, 2>> {
        type Up<B> = Autodiff<B>;
        let n = self.batch();
        let lift = |ts: &[Tensor<B, 2>], track: bool| -> Vec<Tensor<Up<B>, 2>> {
            ts.iter()
                .map(|t| {
                    let t = Tensor::<Up<B>, 2>::from_inner(t.clone());
                    if track {
                        t.require_grad()
                    } else {
                        t
                    }
                })
                .collect()
        };
        let z = || Tensor::<Up<B>, 2>::from_inner(matrix::<B>(self.z.clone(), n, self.z_dim, dev));

        // grad_theta L_G, with phi held at its value.
        let theta_up = lift(theta, true);
        let fake = self.game.generator.forward(&theta_up, z());
        let (loss_g, _) = self.game.generator_loss(&lift(phi, false), fake);
        let grads = loss_g.backward();
        let mut v: Vec<Tensor<B, 2>> = theta_up
            .iter()
            .map(|t| {
                t.grad(&grads)
                    .unwrap_or_else(|| t.clone().inner().zeros_like())
            })
            .collect();

        // grad_phi L_D, with the fake rows depending on theta (at B's level only).
        let phi_up = lift(phi, true);
        let fake = self.game.generator.forward(&lift(theta, false), z());
        let real = Tensor::from_inner(matrix::<B>(self.real.clone(), n, self.x_dim, dev));
        let eps = self
            .eps
            .as_ref()
            .map(|e| Tensor::from_inner(matrix::<B>(e.clone(), n, 1, dev)));
        let d = self.game.discriminator_loss(&phi_up, real, fake, eps);
        let grads = d.loss.backward();
        v.extend(phi_up.iter().map(|t| {
            t.grad(&grads)
                .unwrap_or_else(|| t.clone().inner().zeros_like())
        }));
        v
    }

    /// v(p) for flat parameters `p` (theta then phi).
    pub fn field<B: AutodiffBackend>(&self, p: &[f64], dev: &B::Device) -> Vec<f64> {
        let (g, _, _) = self.dims();
        let theta = Self::tensors::<B>(&self.theta, &p[..g], dev);
        let phi = Self::tensors::<B>(&self.phi, &p[g..], dev);
        self.field_tensors(&theta, &phi, dev)
            .into_iter()
            .flat_map(host)
            .collect()
    }

    /// J(p)^T w: the gradient of v(p) . w.
    pub fn vjp<B: AutodiffBackend>(&self, p: &[f64], w: &[f64], dev: &B::Device) -> Vec<f64> {
        let (g, _, n) = self.dims();
        let theta: Vec<Tensor<B, 2>> = Self::tensors::<B>(&self.theta, &p[..g], dev)
            .into_iter()
            .map(|t| t.require_grad())
            .collect();
        let phi: Vec<Tensor<B, 2>> = Self::tensors::<B>(&self.phi, &p[g..], dev)
            .into_iter()
            .map(|t| t.require_grad())
            .collect();
        let v = self.field_tensors(&theta, &phi, dev);
        let specs: Vec<ParamSpec> = self.theta.iter().chain(&self.phi).cloned().collect();
        let w_tensors = Self::tensors::<B>(&specs, w, dev);
        let dot = v
            .into_iter()
            .zip(w_tensors)
            .map(|(a, b)| (a * b).sum())
            .reduce(|a, b| a + b);
        let Some(dot) = dot else { return vec![0.0; n] };
        let grads = dot.backward();
        theta
            .iter()
            .chain(&phi)
            .flat_map(|t| match t.grad(&grads) {
                Some(g) => host(g),
                None => vec![0.0; t.shape().num_elements()],
            })
            .collect()
    }

    /// J(p) w by central differences of the field: (v(p + h w) - v(p - h w)) / (2 h) with
    /// h = [`FD_STEP`] max(1, |p|) / |w|. The same eigenvalues as the exact J^T w, to within
    /// O(h^2); kept as a cross-check of the exact product and as `probe.product =
    /// "finite_difference"`.
    pub fn jvp_fd<B: AutodiffBackend>(&self, p: &[f64], w: &[f64], dev: &B::Device) -> Vec<f64> {
        let wn = w.iter().map(|x| x * x).sum::<f64>().sqrt();
        if wn == 0.0 {
            return vec![0.0; w.len()];
        }
        let pn = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        let h = FD_STEP * pn.max(1.0) / wn;
        let at = |s: f64| -> Vec<f64> { p.iter().zip(w).map(|(a, b)| a + s * h * b).collect() };
        let plus = self.field::<B>(&at(1.0), dev);
        let minus = self.field::<B>(&at(-1.0), dev);
        plus.iter()
            .zip(&minus)
            .map(|(a, b)| (a - b) / (2.0 * h))
            .collect()
    }

    /// J(p) by central differences, row-major `n x n`, assembled column by column from
    /// [`GameField::jvp_fd`] on the unit vectors.
    pub fn jacobian_fd<B: AutodiffBackend>(&self, p: &[f64], dev: &B::Device) -> Vec<f64>
    where
        B::Device: Sync,
    {
        use rayon::prelude::*;
        let (_, _, n) = self.dims();
        let cols: Vec<Vec<f64>> = (0..n)
            .into_par_iter()
            .map(|j| {
                let mut e = vec![0.0; n];
                e[j] = 1.0;
                self.jvp_fd::<B>(p, &e, dev)
            })
            .collect();
        let mut jac = vec![0.0; n * n];
        for (j, col) in cols.into_iter().enumerate() {
            for (i, v) in col.into_iter().enumerate() {
                jac[i * n + j] = v;
            }
        }
        jac
    }

    /// The whole Jacobian J(p), row-major `n x n`, assembled from n products J^T e_i. The
    /// rows are independent products, computed on rayon's threads; each row is computed by
    /// one thread in a fixed order, so J does not depend on the number of threads.
    pub fn jacobian<B: AutodiffBackend>(&self, p: &[f64], dev: &B::Device) -> Vec<f64>
    where
        B::Device: Sync,
    {
        use rayon::prelude::*;
        let (_, _, n) = self.dims();
        let mut jac = vec![0.0; n * n];
        if n == 0 {
            return jac;
        }
        // Blocks of rows per task: each task reuses one unit vector.
        jac.par_chunks_mut(n * 16)
            .enumerate()
            .for_each(|(block, rows)| {
                let mut e = vec![0.0; n];
                for (r, row) in rows.chunks_mut(n).enumerate() {
                    let i = block * 16 + r;
                    e[i] = 1.0;
                    // J^T e_i is row i of J.
                    row.copy_from_slice(&self.vjp::<B>(p, &e, dev));
                    e[i] = 0.0;
                }
            });
        jac
    }
}
