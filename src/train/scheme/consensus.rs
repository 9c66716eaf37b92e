//! Consensus optimisation (Mescheder et al. 2017, "The numerics of GANs"): both players
//! follow w = v + gamma grad(|v|^2 / 2) = v + gamma J^T v, handed to their optimisers in place
//! of their gradients (gamma = `train.consensus_weight`; the first `n_critic - 1`
//! discriminator updates are plain ones).
//!
//! Exact: v is computed one autodiff level above the training backend (each player's part by
//! `Game::*_part`, the other player tracked one level down), so its arithmetic is recorded at
//! the training level, and one backward pass of |v|^2 / 2 there gives J^T v. The recorded
//! gradient norms are those of v, the players' own gradients.

use burn::backend::Autodiff;
use burn::tensor::Tensor;

use super::{discriminator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, DStats, GStats, Inner, StepStats, TrainingField};

/// Both players follow v + gamma J^T v.
pub struct Consensus;

impl<B: GanBackend> UpdateScheme<B> for Consensus {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        type Up<B> = Autodiff<B>;
        for _ in 1..field.cfg().train.n_critic {
            discriminator_update(field, state);
        }
        let gamma = field.cfg().train.consensus_weight;
        let game = &field.setup.game;
        let batch = field.batch(state.step, &mut state.streams);
        // The parameters at the training level, tracked: J^T v is the gradient there.
        let track = |ps: &[Tensor<Inner<B>, 2>]| -> Vec<Tensor<B, 2>> {
            ps.iter()
                .map(|p| Tensor::from_inner(p.clone()).require_grad())
                .collect()
        };
        let (theta, phi) = (track(&state.theta), track(&state.phi));
        let up = |ps: &[Tensor<B, 2>]| -> Vec<Tensor<Up<B>, 2>> {
            ps.iter()
                .map(|p| Tensor::from_inner(p.clone()).require_grad())
                .collect()
        };
        let z = Tensor::<B, 2>::from_inner(batch.z);
        let (theta_up, phi_up) = (up(&theta), up(&phi));
        let g = game.generator_part::<Up<B>, 2, 2>(&theta_up, &theta_up, &phi, z.clone());
        let d = game.discriminator_part::<Up<B>, 2, 2>(
            &theta,
            &phi_up,
            &phi_up,
            Tensor::from_inner(batch.real),
            z,
            batch.eps.map(Tensor::from_inner),
        );
        let half_sq_norm = g
            .grads
            .iter()
            .chain(&d.grads)
            .map(|v| v.clone().square().sum())
            .reduce(|a, b| a + b)
            .map(|s| s.mul_scalar(0.5));
        let jt_v = half_sq_norm.map(|h| h.backward());
        let follow = |vs: &[Tensor<B, 2>], ps: &[Tensor<B, 2>]| -> Vec<Tensor<Inner<B>, 2>> {
            vs.iter()
                .zip(ps)
                .map(|(v, p)| {
                    let jt = jt_v
                        .as_ref()
                        .and_then(|grads| p.grad(grads))
                        .unwrap_or_else(|| p.clone().inner().zeros_like());
                    v.clone().inner() + jt.mul_scalar(gamma)
                })
                .collect()
        };
        let (w_theta, w_phi) = (follow(&g.grads, &theta), follow(&d.grads, &phi));
        // Every measurement read off the device in one transfer, as the other schemes do.
        let (nd, ng) = (d.grads.len(), g.grads.len());
        let mut scalars = vec![
            d.loss.inner(),
            d.d_real.inner(),
            d.d_fake.inner(),
            g.loss.inner(),
        ];
        scalars.extend(
            d.grads
                .iter()
                .chain(&g.grads)
                .map(|v| v.clone().inner().square().sum()),
        );
        let v = crate::train::read(scalars);
        let stats = StepStats::of(
            DStats {
                loss_d: v[0],
                d_real: v[1],
                d_fake: v[2],
                grad_sq_d: v[4..4 + nd].to_vec(),
            },
            GStats {
                loss_g: v[3],
                grad_sq_g: v[4 + nd..4 + nd + ng].to_vec(),
            },
        );
        state.opt_d.step(&mut state.phi, w_phi);
        field.constrain_discriminator(&mut state.phi);
        state.opt_g.step(&mut state.theta, w_theta);
        stats
    }
}
