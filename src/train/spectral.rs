//! Spectral normalisation's state in a trial (see `game::spectral` for the normaliser): the
//! power iteration's vectors u and v of each discriminator weight matrix, kept in the trial
//! state's memory (`spectral/u/I`, `spectral/v/I`), started from the trial's `spectral_norm`
//! stream and advanced by one step after every training step.

use burn::tensor::{backend::Backend, Tensor};

use super::state::TrialState;
use crate::backend::matrix;
use crate::game::spectral::{converged, outer, outer_of, power_step, weights, SpectralVectors};
use crate::rng::{stream, Stream};
use crate::setup::TrialSetup;

fn names(i: usize) -> (String, String) {
    (format!("spectral/u/{i}"), format!("spectral/v/{i}"))
}

fn enabled(setup: &TrialSetup) -> bool {
    setup.game.objective.spectral_norm
}

/// Each weight's index and the vectors after `iterations` power steps on `phi` from u drawn
/// from N(0, 1) on the trial's `spectral_norm` stream (the same draw every time).
fn iterated<B: Backend>(
    setup: &TrialSetup,
    phi: &[Tensor<B, 2>],
    iterations: usize,
) -> Vec<(usize, Tensor<B, 2>, Tensor<B, 2>)> {
    let mut rng = stream(setup.cfg.seed, Stream::SpectralNorm);
    let specs = setup.game.discriminator.param_specs();
    weights(&setup.game.discriminator)
        .into_iter()
        .map(|i| {
            let cols = specs[i].cols;
            let u0 = super::gaussian(&mut rng, cols, 1.0);
            let w = &phi[i];
            let (u, v) = converged(w, matrix::<B>(u0, cols, 1, &w.device()), iterations);
            (i, u, v)
        })
        .collect()
}

/// The first vectors: one power step on the initial weights from the starting draw (so step 0
/// already normalises with an iterated estimate).
pub fn start<B: Backend>(setup: &TrialSetup, state: &mut TrialState<B>) {
    if !enabled(setup) {
        return;
    }
    for (i, u, v) in iterated(setup, &state.phi, 1) {
        let (nu, nv) = names(i);
        state.memory.insert(nu, u);
        state.memory.insert(nv, v);
    }
}

/// One power step on the current weights from the kept u.
pub fn iterate<B: Backend>(setup: &TrialSetup, state: &mut TrialState<B>) {
    if !enabled(setup) {
        return;
    }
    for i in weights(&setup.game.discriminator) {
        let (nu, nv) = names(i);
        let Some(u) = state.memory.get(&nu) else {
            continue;
        };
        let (u, v) = power_step(&state.phi[i], u);
        state.memory.insert(nu, u);
        state.memory.insert(nv, v);
    }
}

/// The normaliser for the kept vectors (None without spectral normalisation).
pub fn vectors<B: Backend>(setup: &TrialSetup, state: &TrialState<B>) -> Option<SpectralVectors> {
    if !enabled(setup) {
        return None;
    }
    let outer = weights(&setup.game.discriminator)
        .into_iter()
        .filter_map(|i| {
            let (nu, nv) = names(i);
            let (u, v) = (state.memory.get(&nu)?, state.memory.get(&nv)?);
            Some((i, outer(u, v)))
        })
        .collect();
    Some(SpectralVectors { outer })
}

/// The kept vectors as host values, for a checkpoint: for each weight in order, u (`cols`
/// values) then v (`rows` values). None without spectral normalisation.
pub fn host_values<B: Backend>(setup: &TrialSetup, state: &TrialState<B>) -> Option<Vec<f64>> {
    if !enabled(setup) {
        return None;
    }
    let mut out = Vec::new();
    for i in weights(&setup.game.discriminator) {
        let (nu, nv) = names(i);
        for name in [nu, nv] {
            out.extend(
                state
                    .memory
                    .get(&name)
                    .map(|t| crate::backend::host(t.clone()))?,
            );
        }
    }
    Some(out)
}

/// The normaliser for [`host_values`] read back; an error when their number does not fit
/// the trial's discriminator.
pub fn from_host_values(setup: &TrialSetup, values: &[f64]) -> anyhow::Result<SpectralVectors> {
    let specs = setup.game.discriminator.param_specs();
    let mut at = 0;
    let mut outer = Vec::new();
    for i in weights(&setup.game.discriminator) {
        let (rows, cols) = (specs[i].rows, specs[i].cols);
        let (u, v) = values
            .get(at..at + cols + rows)
            .map(|s| s.split_at(cols))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{} values, the trial's discriminator needs more (weight `{}`)",
                    values.len(),
                    specs[i].name
                )
            })?;
        at += cols + rows;
        outer.push((i, outer_of(u, v)));
    }
    if at != values.len() {
        anyhow::bail!(
            "{} values, the trial's discriminator needs {at}",
            values.len()
        );
    }
    Ok(SpectralVectors { outer })
}

/// The normaliser for discriminator weights known only as host values (a saved trial's
/// parameters): the vectors iterated `iterations` times from the trial's starting draw, which
/// converge to the top singular pair that training's vectors track.
pub fn converged_vectors<B: Backend>(
    setup: &TrialSetup,
    phi: &[Tensor<B, 2>],
    iterations: usize,
) -> Option<SpectralVectors> {
    if !enabled(setup) {
        return None;
    }
    let outer = iterated(setup, phi, iterations)
        .into_iter()
        .map(|(i, u, v)| (i, outer(&u, &v)))
        .collect();
    Some(SpectralVectors { outer })
}
