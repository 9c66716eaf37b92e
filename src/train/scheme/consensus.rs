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
use crate::train::{
    lift, state::TrialState, Batch, DStats, GStats, Inner, StepStats, TrainingField,
};

/// Both players follow v + gamma J^T v.
pub struct Consensus;

/// Tensors of both players: theta's, then phi's.
pub(crate) struct Players<T> {
    pub theta: Vec<T>,
    pub phi: Vec<T>,
}

/// v and J^T v at one point on one batch, with the step's measurements (those of v).
pub(crate) struct FieldAndTranspose<B: GanBackend> {
    pub stats: StepStats,
    pub v: Players<Tensor<Inner<B>, 2>>,
    pub jt_v: Players<Tensor<Inner<B>, 2>>,
}

/// Tensors one autodiff level up, tracked there.
pub(crate) fn lifted<B: GanBackend>(ps: &[Tensor<B, 2>]) -> Vec<Tensor<Autodiff<B>, 2>> {
    ps.iter()
        .map(|p| Tensor::from_inner(p.clone()).require_grad())
        .collect()
}

/// v at (theta, phi) on `batch`, and J^T v = grad(|v|^2 / 2) by one backward pass at the
/// training level.
pub(crate) fn field_and_transpose<B: GanBackend>(
    field: &TrainingField<B>,
    theta: &[Tensor<Inner<B>, 2>],
    phi: &[Tensor<Inner<B>, 2>],
    batch: Batch<Inner<B>>,
) -> FieldAndTranspose<B> {
    type Up<B> = Autodiff<B>;
    let game = &field.setup.game;
    let (theta, phi) = (lift::<B>(theta), lift::<B>(phi));
    let z = Tensor::<B, 2>::from_inner(batch.z);
    let (theta_up, phi_up) = (lifted(&theta), lifted(&phi));
    let g = game.generator_part::<Up<B>, 2, 2>(
        &theta_up,
        &theta_up,
        &field.discriminator_view(&phi),
        z.clone(),
    );
    let d = game.discriminator_part::<Up<B>, 2, 2>(
        &theta,
        &phi_up,
        &field.discriminator_view(&phi_up),
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
    let transpose = |ps: &[Tensor<B, 2>]| -> Vec<Tensor<Inner<B>, 2>> {
        ps.iter()
            .map(|p| {
                jt_v.as_ref()
                    .and_then(|grads| p.grad(grads))
                    .unwrap_or_else(|| p.clone().inner().zeros_like())
            })
            .collect()
    };
    let jt_v = Players {
        theta: transpose(&theta),
        phi: transpose(&phi),
    };
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
    let s = crate::train::read(scalars);
    let stats = StepStats::of(
        DStats {
            loss_d: s[0],
            d_real: s[1],
            d_fake: s[2],
            grad_sq_d: s[4..4 + nd].to_vec(),
        },
        GStats {
            loss_g: s[3],
            grad_sq_g: s[4 + nd..4 + nd + ng].to_vec(),
        },
    );
    let inner = |vs: Vec<Tensor<B, 2>>| vs.into_iter().map(|v| v.inner()).collect();
    FieldAndTranspose {
        stats,
        v: Players {
            theta: inner(g.grads),
            phi: inner(d.grads),
        },
        jt_v,
    }
}

/// a + s b, tensor by tensor.
pub(crate) fn plus_scaled<B: burn::tensor::backend::Backend>(
    a: &[Tensor<B, 2>],
    b: &[Tensor<B, 2>],
    s: f64,
) -> Vec<Tensor<B, 2>> {
    a.iter()
        .zip(b)
        .map(|(a, b)| a.clone() + b.clone().mul_scalar(s))
        .collect()
}

impl<B: GanBackend> UpdateScheme<B> for Consensus {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        for _ in 1..field.cfg().train.n_critic {
            discriminator_update(field, state);
        }
        let gamma = field.cfg().train.consensus_weight;
        let batch = field.batch(state.step, &mut state.streams);
        let f = field_and_transpose(field, &state.theta, &state.phi, batch);
        let w_theta = plus_scaled(&f.v.theta, &f.jt_v.theta, gamma);
        let w_phi = plus_scaled(&f.v.phi, &f.jt_v.phi, gamma);
        state.opt_d.step(&mut state.phi, w_phi);
        field.constrain_discriminator(&mut state.phi);
        state.opt_g.step(&mut state.theta, w_theta);
        f.stats
    }
}
