//! Update schemes: how one step orders the players' updates. A scheme sees the game's field
//! on the training backend and the trial state (parameters, optimisers, streams), nothing of
//! the recording around it.
//!
//! Adding a scheme: a file here with a type implementing [`UpdateScheme`], a variant of
//! `spec::UpdateScheme` (the name experiment files use) and its arm in [`build`]; `ganlab
//! list` takes its names from the same enum's catalogue entry.

mod alternating;
mod alternating_g_first;
pub(crate) mod consensus;
mod extragradient;
mod optimistic;
mod rk4;
mod rk45;
pub mod sga;
mod simultaneous;

pub use alternating::Alternating;
pub use alternating_g_first::AlternatingGFirst;
pub use consensus::Consensus;
pub use extragradient::Extragradient;
pub use optimistic::Optimistic;
pub use rk4::Rk4;
pub use rk45::Rk45;
pub use sga::Sga;
pub use simultaneous::Simultaneous;

use burn::tensor::Tensor;

use super::{state::TrialState, Batch, DStats, GStats, Inner, StepStats, TrainingField};
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
        crate::spec::UpdateScheme::AlternatingGFirst => Box::new(AlternatingGFirst),
        crate::spec::UpdateScheme::Extragradient => Box::new(Extragradient),
        crate::spec::UpdateScheme::Consensus => Box::new(Consensus),
        crate::spec::UpdateScheme::Optimistic => Box::new(Optimistic),
        crate::spec::UpdateScheme::Rk4 => Box::new(Rk4),
        crate::spec::UpdateScheme::Rk45 => Box::new(Rk45),
        crate::spec::UpdateScheme::Sga => Box::new(Sga),
    }
}

/// One discriminator update against the current generator, on a fresh batch.
pub fn discriminator_update<B: GanBackend>(
    field: &TrainingField<B>,
    state: &mut TrialState<Inner<B>>,
) -> DStats {
    let batch = field.batch(state.step, &mut state.streams);
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
    let z = field.latent_batch(state.step, &mut state.streams, field.cfg().train.batch);
    let (stats, grads) = field.generator_gradient(&state.theta, &state.phi, z);
    state.opt_g.step(&mut state.theta, grads);
    stats
}

/// The threads that compute the two players' gradients of one step. A pool of its own, as
/// wide as the machine, so that a study running one trial at a time still uses both sides of
/// the step at once.
pub(crate) fn step_pool() -> &'static rayon::ThreadPool {
    static POOL: std::sync::OnceLock<rayon::ThreadPool> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("ganlab-step-{i}"))
            .build()
            .unwrap_or_else(|e| panic!("cannot start the step threads: {e}"))
    })
}

/// Both parts of v at (theta, phi) on one batch: the discriminator's (with its
/// measurements and gradients) and the generator's (on the batch's latent rows).
///
/// They come from two independent graphs, built and walked on two threads: grad_phi L_D (with
/// the fake rows as constants) and grad_theta L_G (with phi as constants). Each graph is
/// computed by one thread in a fixed order, so the numbers do not depend on how the threads
/// are scheduled.
#[allow(clippy::type_complexity)]
pub fn both_gradients<B: GanBackend>(
    field: &TrainingField<B>,
    theta: &[Tensor<Inner<B>, 2>],
    phi: &[Tensor<Inner<B>, 2>],
    batch: Batch<Inner<B>>,
) -> (
    (DStats, Vec<Tensor<Inner<B>, 2>>),
    (GStats, Vec<Tensor<Inner<B>, 2>>),
) {
    let z = batch.z.clone();
    step_pool().join(
        move || field.discriminator_gradient(theta, phi, batch),
        move || field.generator_gradient(theta, phi, z),
    )
}
