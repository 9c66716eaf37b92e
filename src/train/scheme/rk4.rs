//! The gradient flow d(theta, phi)/dt = -v(theta, phi), integrated by the classical fixed-step
//! Runge-Kutta method of order 4: per step of length h (`train.opt_g.lr`, which validation
//! requires to be plain SGD with the discriminator's step equal to it),
//! k1 = v(p), k2 = v(p - h/2 k1), k3 = v(p - h/2 k2), k4 = v(p - h k3),
//! p <- p - h/6 (k1 + 2 k2 + 2 k3 + k4), all four on one batch. It is the continuous-time
//! reference the discrete schemes are read against: on the unregularised Dirac-GAN the flow
//! rotates about the equilibrium, and RK4 keeps the distance to it to O(h^6) per step.

use burn::tensor::Tensor;

use super::{both_gradients, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, FlowStats, Inner, StepStats, TrainingField};

/// One fixed step of the gradient flow by RK4.
pub struct Rk4;

type Params<B> = Vec<Tensor<Inner<B>, 2>>;

/// p - s k, tensor by tensor.
fn moved<B: GanBackend>(p: &[Tensor<Inner<B>, 2>], k: &[Tensor<Inner<B>, 2>], s: f64) -> Params<B> {
    p.iter()
        .zip(k)
        .map(|(p, k)| p.clone() - k.clone().mul_scalar(s))
        .collect()
}

/// k1 + 2 k2 + 2 k3 + k4, tensor by tensor.
fn combined<B: GanBackend>(k: [&Params<B>; 4]) -> Params<B> {
    (0..k[0].len())
        .map(|i| {
            k[0][i].clone()
                + k[1][i].clone().mul_scalar(2.0)
                + k[2][i].clone().mul_scalar(2.0)
                + k[3][i].clone()
        })
        .collect()
}

impl<B: GanBackend> UpdateScheme<B> for Rk4 {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        let h = field.cfg().train.opt_g.lr();
        let batch = field.batch(state.step, &mut state.streams);
        let (theta, phi) = (state.theta.clone(), state.phi.clone());
        let ((d, k1d), (g, k1g)) = both_gradients(field, &theta, &phi, batch.clone());
        let ((_, k2d), (_, k2g)) = both_gradients(
            field,
            &moved::<B>(&theta, &k1g, h / 2.0),
            &moved::<B>(&phi, &k1d, h / 2.0),
            batch.clone(),
        );
        let ((_, k3d), (_, k3g)) = both_gradients(
            field,
            &moved::<B>(&theta, &k2g, h / 2.0),
            &moved::<B>(&phi, &k2d, h / 2.0),
            batch.clone(),
        );
        let ((_, k4d), (_, k4g)) = both_gradients(
            field,
            &moved::<B>(&theta, &k3g, h),
            &moved::<B>(&phi, &k3d, h),
            batch,
        );
        state.theta = moved::<B>(&theta, &combined::<B>([&k1g, &k2g, &k3g, &k4g]), h / 6.0);
        state.phi = moved::<B>(&phi, &combined::<B>([&k1d, &k2d, &k3d, &k4d]), h / 6.0);
        field.constrain_discriminator(&mut state.phi);
        StepStats::of(d, g).with_flow(FlowStats {
            time: state.step as f64 * h,
            step_size: h,
            rejected: 0,
        })
    }
}
