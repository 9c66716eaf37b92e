//! Alternating updates with the generator first (the order of Mescheder et al.'s code): the
//! generator's update against the current discriminator, then the discriminator's `n_critic`
//! updates against the updated generator.

use super::{discriminator_update, generator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, Inner, StepStats, TrainingField};

/// The generator steps first; the discriminator then sees the updated generator.
pub struct AlternatingGFirst;

impl<B: GanBackend> UpdateScheme<B> for AlternatingGFirst {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        let g = generator_update(field, state);
        let mut d = discriminator_update(field, state);
        for _ in 1..field.cfg().train.n_critic {
            d = discriminator_update(field, state);
        }
        StepStats::of(d, g)
    }
}
