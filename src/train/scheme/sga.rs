//! Symplectic gradient adjustment (Balduzzi et al. 2018, "The mechanics of n-player
//! differentiable games"): both players follow w = v + lambda A^T v, A = (J - J^T) / 2 the
//! antisymmetric part of the game Jacobian, handed to their optimisers in place of their
//! gradients. lambda = `train.sga_weight`; with `train.sga_align` its sign is chosen per step
//! by the paper's alignment rule, sign(<v, grad H> <A^T v, grad H> / d + 1/10), H = |v|^2 / 2,
//! d the number of parameters, so the adjustment points towards a stable fixed point and away
//! from an unstable one. The first `n_critic - 1` discriminator updates are plain ones.
//!
//! Exact, by three graphs (burn walks a graph once):
//! - J^T v = grad H, as in consensus (`consensus::field_and_transpose`);
//! - J v, block theta: grad_theta <grad L_G, v>, and block phi: grad_phi <grad L_D, v>, where
//!   grad L is a loss's gradient with respect to both players (`Game::loss_gradients`, one
//!   level up) and v is held fixed. This is J v because second derivatives are symmetric:
//!   d/d(theta_i) sum_j (dL_G/dp_j) v_j = sum_j (d^2 L_G / dtheta_i dp_j) v_j = (J v)_i.
//!
//! A^T v = (J^T v - J v) / 2.

use burn::backend::Autodiff;
use burn::tensor::Tensor;

use super::consensus::{field_and_transpose, lifted, plus_scaled, Players};
use super::{discriminator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, Batch, Inner, StepStats, TrainingField};

/// Both players follow v + lambda A^T v.
pub struct Sga;

/// The alignment rule's epsilon (Balduzzi et al.'s 1/10): with no information in the product
/// the sign is +, the direction that makes SGA attract to a stable fixed point.
pub const ALIGN_EPSILON: f64 = 0.1;

/// What SGA computes at one point on one batch.
pub struct Adjusted<B: GanBackend> {
    pub stats: StepStats,
    /// v, J^T v, J v (theta's tensors then phi's).
    pub v: Vec<Tensor<Inner<B>, 2>>,
    pub jt_v: Vec<Tensor<Inner<B>, 2>>,
    pub j_v: Vec<Tensor<Inner<B>, 2>>,
    /// The lambda used, sign included.
    pub lambda: f64,
    /// v + lambda A^T v, for theta and for phi.
    pub w_theta: Vec<Tensor<Inner<B>, 2>>,
    pub w_phi: Vec<Tensor<Inner<B>, 2>>,
}

/// One player's block of J v: the gradient, with respect to that player's tensors, of
/// <grad L, v> (grad L its loss's gradient with respect to both players, v fixed).
fn jv_block<B: GanBackend>(
    field: &TrainingField<B>,
    generator: bool,
    theta: &[Tensor<Inner<B>, 2>],
    phi: &[Tensor<Inner<B>, 2>],
    v: &Players<Tensor<Inner<B>, 2>>,
    batch: &Batch<Inner<B>>,
) -> Vec<Tensor<Inner<B>, 2>> {
    type Up<B> = Autodiff<B>;
    // Only the block's own player is tracked at the training level.
    let at = |ps: &[Tensor<Inner<B>, 2>], track: bool| -> Vec<Tensor<B, 2>> {
        if track {
            crate::train::lift::<B>(ps)
        } else {
            ps.iter().map(|p| Tensor::from_inner(p.clone())).collect()
        }
    };
    let (theta_b, phi_b) = (at(theta, generator), at(phi, !generator));
    let phi_up = lifted(&phi_b);
    let (grad_theta, grad_phi) = field.setup.game.loss_gradients::<Up<B>, 2>(
        generator,
        &lifted(&theta_b),
        &phi_up,
        &field.discriminator_view(&phi_up),
        Tensor::from_inner(batch.real.clone()),
        Tensor::from_inner(batch.z.clone()),
        batch.eps.clone().map(Tensor::from_inner),
    );
    let dot = grad_theta
        .into_iter()
        .zip(&v.theta)
        .chain(grad_phi.into_iter().zip(&v.phi))
        .map(|(g, v)| (g * Tensor::from_inner(v.clone())).sum())
        .reduce(|a, b| a + b);
    let own = if generator { &theta_b } else { &phi_b };
    let grads = dot.map(|d| d.backward());
    own.iter()
        .map(|p| {
            grads
                .as_ref()
                .and_then(|g| p.grad(g))
                .unwrap_or_else(|| p.clone().inner().zeros_like())
        })
        .collect()
}

/// <a, b> and <c, d> (each summed over the tensors), read off the device in one transfer.
fn two_dots<B: burn::tensor::backend::Backend>(
    (a, b): (&[Tensor<B, 2>], &[Tensor<B, 2>]),
    (c, d): (&[Tensor<B, 2>], &[Tensor<B, 2>]),
) -> (f64, f64) {
    let per_tensor = |x: &[Tensor<B, 2>], y: &[Tensor<B, 2>]| -> Vec<Tensor<B, 1>> {
        x.iter()
            .zip(y)
            .map(|(x, y)| (x.clone() * y.clone()).sum())
            .collect()
    };
    let first = per_tensor(a, b);
    let k = first.len();
    let mut scalars = first;
    scalars.extend(per_tensor(c, d));
    let s = crate::train::read(scalars);
    (s[..k].iter().sum(), s[k..].iter().sum())
}

/// SGA's direction at (theta, phi) on `batch`.
pub fn adjusted<B: GanBackend>(
    field: &TrainingField<B>,
    theta: &[Tensor<Inner<B>, 2>],
    phi: &[Tensor<Inner<B>, 2>],
    batch: Batch<Inner<B>>,
) -> Adjusted<B> {
    let t = &field.cfg().train;
    let f = field_and_transpose(field, theta, phi, batch.clone());
    let mut j_v = jv_block(field, true, theta, phi, &f.v, &batch);
    j_v.extend(jv_block(field, false, theta, phi, &f.v, &batch));
    let cat = |p: &Players<Tensor<Inner<B>, 2>>| -> Vec<Tensor<Inner<B>, 2>> {
        p.theta.iter().chain(&p.phi).cloned().collect()
    };
    let (v, jt_v) = (cat(&f.v), cat(&f.jt_v));
    // A^T v = (J^T v - J v) / 2.
    let at_v: Vec<_> = plus_scaled(&jt_v, &j_v, -1.0)
        .into_iter()
        .map(|x| x.mul_scalar(0.5))
        .collect();
    let lambda = if t.sga_align {
        let d: usize = v.iter().map(|x| x.dims().iter().product::<usize>()).sum();
        let (v_h, atv_h) = two_dots((&v, &jt_v), (&at_v, &jt_v));
        let sign = if v_h * atv_h / d as f64 + ALIGN_EPSILON >= 0.0 {
            1.0
        } else {
            -1.0
        };
        sign * t.sga_weight
    } else {
        t.sga_weight
    };
    let w = plus_scaled(&v, &at_v, lambda);
    let ng = f.v.theta.len();
    Adjusted {
        stats: f.stats,
        w_theta: w[..ng].to_vec(),
        w_phi: w[ng..].to_vec(),
        v,
        jt_v,
        j_v,
        lambda,
    }
}

impl<B: GanBackend> UpdateScheme<B> for Sga {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        for _ in 1..field.cfg().train.n_critic {
            discriminator_update(field, state);
        }
        let batch = field.batch(state.step, &mut state.streams);
        let a = adjusted(field, &state.theta, &state.phi, batch);
        state.opt_d.step(&mut state.phi, a.w_phi);
        field.constrain_discriminator(&mut state.phi);
        state.opt_g.step(&mut state.theta, a.w_theta);
        a.stats
    }
}
