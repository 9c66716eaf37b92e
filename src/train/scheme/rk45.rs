//! The gradient flow d(theta, phi)/dt = -v(theta, phi) by the adaptive Dormand-Prince 5(4)
//! pair (see `train::flow`): one accepted step per training step, on one batch, its size
//! chosen by the error control with tolerances `train.rtol` and `train.atol` (the first step
//! tries `train.opt_g.lr`, which validation requires to be plain SGD with one step size; no
//! step is longer than `flow::MAX_STEP_FACTOR` times it). The
//! flow's time and the next step size are kept in the trial state (`flow/time`,
//! `flow/step_size`); each row records the step's start time, its size and the attempts it
//! rejected.

use super::UpdateScheme;
use crate::backend::GanBackend;
use crate::train::flow::{step, Point, Tolerance, MAX_STEP_FACTOR};
use crate::train::{state::TrialState, FlowStats, Inner, StepStats, TrainingField};

/// One accepted step of the gradient flow by Dormand-Prince 5(4).
pub struct Rk45;

impl<B: GanBackend> UpdateScheme<B> for Rk45 {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        let t = &field.cfg().train;
        let tol = Tolerance {
            rtol: t.rtol,
            atol: t.atol,
        };
        let h = state
            .scalars
            .get("flow/step_size")
            .copied()
            .unwrap_or(t.opt_g.lr());
        let time = state.scalars.get("flow/time").copied().unwrap_or(0.0);
        let batch = field.batch(state.step, &mut state.streams);
        let ng = state.theta.len();
        let p: Point<B> = state.theta.iter().chain(&state.phi).cloned().collect();
        let s = step(
            field,
            &p,
            ng,
            &batch,
            h,
            t.opt_g.lr() * MAX_STEP_FACTOR,
            tol,
        );
        let mut point = s.point;
        state.phi = point.split_off(ng);
        state.theta = point;
        field.constrain_discriminator(&mut state.phi);
        state.scalars.insert("flow/time".into(), time + s.taken);
        state.scalars.insert("flow/step_size".into(), s.next);
        let (d, g) = s.start;
        StepStats::of(d, g).with_flow(FlowStats {
            time,
            step_size: s.taken,
            rejected: s.rejected,
        })
    }
}
