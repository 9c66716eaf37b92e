//! Optimistic updates (Daskalakis et al. 2018, "Training GANs with optimism"; with Adam,
//! optimistic Adam): both parts of v at the current point on one batch, the optimisers' steps
//! u_t for them, and p <- p - 2 u_t + u_{t-1}. The first step has no u_{-1} and is a plain
//! step. u_t is kept in the trial state's memory (`optimistic/theta/I`, `optimistic/phi/I`),
//! so a resumed trial continues exactly. With SGD of step eta it is
//! p <- p - 2 eta v_t + eta v_{t-1}; the first `n_critic - 1` discriminator updates are
//! plain ones, each on its own batch.

use burn::tensor::Tensor;

use super::{both_gradients, discriminator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, Inner, StepStats, TrainingField};

/// The optimiser's step now, minus the last one.
pub struct Optimistic;

/// p - 2 u + u_prev (p - u where there is no previous step), storing u as the previous one.
fn apply<B: GanBackend>(
    params: &mut [Tensor<Inner<B>, 2>],
    updates: Vec<Tensor<Inner<B>, 2>>,
    memory: &mut std::collections::BTreeMap<String, Tensor<Inner<B>, 2>>,
    player: &str,
) {
    for (i, (p, u)) in params.iter_mut().zip(updates).enumerate() {
        let key = format!("optimistic/{player}/{i}");
        *p = match memory.get(&key) {
            Some(prev) => p.clone() - u.clone().mul_scalar(2.0) + prev.clone(),
            None => p.clone() - u.clone(),
        };
        memory.insert(key, u);
    }
}

impl<B: GanBackend> UpdateScheme<B> for Optimistic {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        for _ in 1..field.cfg().train.n_critic {
            discriminator_update(field, state);
        }
        let batch = field.batch(state.step, &mut state.streams);
        let ((d, g_phi), (g, g_theta)) = both_gradients(field, &state.theta, &state.phi, batch);
        let u_phi = state.opt_d.updates(g_phi);
        apply::<B>(&mut state.phi, u_phi, &mut state.memory, "phi");
        field.constrain_discriminator(&mut state.phi);
        let u_theta = state.opt_g.updates(g_theta);
        apply::<B>(&mut state.theta, u_theta, &mut state.memory, "theta");
        StepStats::of(d, g)
    }
}
