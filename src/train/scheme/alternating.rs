//! Alternating updates: the discriminator's `n_critic` updates first, then the generator's
//! update against the updated discriminator on fresh latent rows.

use super::{discriminator_update, generator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, Inner, StepStats, TrainingField};

/// The discriminator steps first; the generator then sees the updated discriminator.
pub struct Alternating;

impl<B: GanBackend> UpdateScheme<B> for Alternating {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        let mut d = discriminator_update(field, state);
        for _ in 1..field.cfg().train.n_critic {
            d = discriminator_update(field, state);
        }
        let g = generator_update(field, state);
        StepStats::of(d, g)
    }
}
