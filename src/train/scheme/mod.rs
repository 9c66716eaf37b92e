//! Update schemes: how one step orders the players' updates. A scheme sees the game's field
//! on the training backend and the trial state (parameters, optimisers, streams), nothing of
//! the recording around it.
//!
//! Adding a scheme: a file here with a type implementing [`UpdateScheme`], a variant of
//! `spec::UpdateScheme` (the name experiment files use) and its arm in [`build`]; `ganlab
//! list` takes its names from the same enum's catalogue entry.

mod alternating;
mod simultaneous;

pub use alternating::Alternating;
pub use simultaneous::Simultaneous;

use super::{state::TrialState, DStats, GStats, Inner, StepStats, TrainingField};
use crate::backend::GanBackend;

/// One training step over a field and a trial state.
pub trait UpdateScheme<B: GanBackend>: Send + Sync {
    /// Applies one step (`n_critic` discriminator updates and one generator update) and
    /// returns what it measured before its updates.
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats;
}

/// The scheme an experiment file names.
pub fn build<B: GanBackend>(kind: crate::spec::UpdateScheme) -> Box<dyn UpdateScheme<B>> {
    match kind {
        crate::spec::UpdateScheme::Simultaneous => Box::new(Simultaneous),
        crate::spec::UpdateScheme::Alternating => Box::new(Alternating),
    }
}

/// One discriminator update against the current generator, on a fresh batch.
pub fn discriminator_update<B: GanBackend>(
    field: &TrainingField<B>,
    state: &mut TrialState<Inner<B>>,
) -> DStats {
    let batch = field.batch(&mut state.streams);
    let (stats, grads) = field.discriminator_gradient(&state.theta, &state.phi, batch);
    state.opt_d.step(&mut state.phi, grads);
    field.constrain_discriminator(&mut state.phi);
    stats
}

/// One generator update against the current discriminator, on fresh latent rows.
pub fn generator_update<B: GanBackend>(
    field: &TrainingField<B>,
    state: &mut TrialState<Inner<B>>,
) -> GStats {
    let z = field.latent_batch(&mut state.streams, field.cfg().train.batch);
    let (stats, grads) = field.generator_gradient(&state.theta, &state.phi, z);
    state.opt_g.step(&mut state.theta, grads);
    stats
}
