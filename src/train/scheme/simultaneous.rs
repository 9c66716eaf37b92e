//! Simultaneous updates: the last discriminator update and the generator update use
//! gradients taken at the same point and on the same batch (the first `n_critic - 1`
//! discriminator updates come before, each on its own batch).

use super::{both_gradients, discriminator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, Inner, StepStats, TrainingField};

/// Both gradients at one point and one batch, then both updates.
pub struct Simultaneous;

impl<B: GanBackend> UpdateScheme<B> for Simultaneous {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        for _ in 1..field.cfg().train.n_critic {
            discriminator_update(field, state);
        }
        let batch = field.batch(state.step, &mut state.streams);
        let ((d, g_phi), (g, g_theta)) = both_gradients(field, &state.theta, &state.phi, batch);
        state.opt_d.step(&mut state.phi, g_phi);
        field.constrain_discriminator(&mut state.phi);
        state.opt_g.step(&mut state.theta, g_theta);
        StepStats::of(d, g)
    }
}
