//! Simultaneous updates: the last discriminator update and the generator update use
//! gradients taken at the same point and on the same batch (the first `n_critic - 1`
//! discriminator updates come before, each on its own batch).

use super::{discriminator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, Inner, StepStats, TrainingField};

/// Both gradients at one point and one batch, then both updates.
pub struct Simultaneous;

/// The threads that compute the two players' gradients of one step. A pool of its own, as
/// wide as the machine, so that a study running one trial at a time (`--jobs 1`, whose trial
/// runs in a one-thread pool) still uses both sides of the step at once.
fn step_pool() -> &'static rayon::ThreadPool {
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

impl<B: GanBackend> UpdateScheme<B> for Simultaneous {
    /// The two gradients come from two independent graphs, built and walked on two threads:
    /// grad_phi L_D (with the fake rows as constants) and grad_theta L_G (with phi as
    /// constants). Each graph is computed by one thread in a fixed order, so the numbers do
    /// not depend on how the threads are scheduled.
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        for _ in 1..field.cfg().train.n_critic {
            discriminator_update(field, state);
        }
        let batch = field.batch(&mut state.streams);
        let z = batch.z.clone();
        let (theta, phi) = (&state.theta, &state.phi);
        let ((d, g_phi), (g, g_theta)) = step_pool().join(
            move || field.discriminator_gradient(theta, phi, batch),
            move || field.generator_gradient(theta, phi, z),
        );
        state.opt_d.step(&mut state.phi, g_phi);
        field.constrain_discriminator(&mut state.phi);
        state.opt_g.step(&mut state.theta, g_theta);
        StepStats::of(d, g)
    }
}
