//! Extragradient (Korpelevich 1976; for GANs Gidel et al. 2019): from the current point p,
//! a lookahead p' = p - step(v(p)), then the update p <- p - step(v(p')), both parts of v
//! taken at one point on one batch each time (the same batch for both). The first
//! `n_critic - 1` discriminator updates come before, each on its own batch.
//!
//! The lookahead uses a copy of the optimisers, so their state moves only with the update:
//! with SGD this is the textbook method; with Adam or RMSProp the lookahead takes the step
//! the optimiser would take, without keeping its moments. On the bilinear game (the WGAN
//! Dirac-GAN) with SGD step eta the distance to the equilibrium shrinks by
//! sqrt(1 - eta^2 + eta^4) per step, where simultaneous steps grow it by sqrt(1 + eta^2).

use super::{both_gradients, discriminator_update, UpdateScheme};
use crate::backend::GanBackend;
use crate::train::{state::TrialState, Inner, StepStats, TrainingField};

/// Look ahead one simultaneous step, then update with the gradients found there.
pub struct Extragradient;

impl<B: GanBackend> UpdateScheme<B> for Extragradient {
    fn step(&self, field: &TrainingField<B>, state: &mut TrialState<Inner<B>>) -> StepStats {
        for _ in 1..field.cfg().train.n_critic {
            discriminator_update(field, state);
        }
        let batch = field.batch(state.step, &mut state.streams);
        let ((d, g_phi), (g, g_theta)) =
            both_gradients(field, &state.theta, &state.phi, batch.clone());
        let (mut theta, mut phi) = (state.theta.clone(), state.phi.clone());
        let (mut opt_g, mut opt_d) = (state.opt_g.clone(), state.opt_d.clone());
        opt_d.step(&mut phi, g_phi);
        field.constrain_discriminator(&mut phi);
        opt_g.step(&mut theta, g_theta);
        let ((_, g_phi), (_, g_theta)) = both_gradients(field, &theta, &phi, batch);
        state.opt_d.step(&mut state.phi, g_phi);
        field.constrain_discriminator(&mut state.phi);
        state.opt_g.step(&mut state.theta, g_theta);
        StepStats::of(d, g)
    }
}
