//! The discretisation drift of a discrete trial (`record.drift`): the distance between its
//! trajectory and the gradient flow from the same start over the same time. Step k of plain
//! SGD with step h is read as time k h; alongside the trial, a copy of its start is carried
//! along the flow by the Dormand-Prince integrator (`flow`, tolerances `train.rtol`,
//! `train.atol`), over [k h, (k + 1) h] on the first batch step k draws, so the drift measures
//! how the scheme discretises the field, not the noise between batches. The copy lives in
//! the trial state's memory (`drift/theta/I`, `drift/phi/I`, and the integrator's step size
//! `drift/step_size`), so a resumed trial measures the same drift. The copy gets the
//! objective's constraint after each interval (weight clipping under `wgan_clip`), as the
//! trial does after each update; under spectral normalisation it is normalised with the
//! trial's power-iteration vectors of that step (the field the trial follows).
//! A flow copy whose field stops being finite records NaN; the trial goes on.

use burn::tensor::Tensor;

use super::flow::{integrate, Point, Tolerance};
use super::{read, state::TrialState, Inner, TrainingField};
use crate::backend::GanBackend;

/// The distance between the trial's point and the flow's at the start of the step, then the
/// flow's copy advanced by one step's time.
pub fn measure_and_advance<B: GanBackend>(
    field: &TrainingField<B>,
    state: &mut TrialState<Inner<B>>,
) -> f64 {
    let t = &field.cfg().train;
    let h = t.opt_g.lr();
    let ng = state.theta.len();
    let here: Point<B> = state.theta.iter().chain(&state.phi).cloned().collect();
    let key = |i: usize| {
        if i < ng {
            format!("drift/theta/{i}")
        } else {
            format!("drift/phi/{}", i - ng)
        }
    };
    let copy: Point<B> = (0..here.len())
        .map(|i| {
            state
                .memory
                .get(&key(i))
                .cloned()
                .unwrap_or_else(|| here[i].clone())
        })
        .collect();
    let sq: Vec<Tensor<Inner<B>, 1>> = here
        .iter()
        .zip(&copy)
        .map(|(a, b)| (a.clone() - b.clone()).square().sum())
        .collect();
    let distance = read(sq).iter().sum::<f64>().sqrt();
    // The batch the step is about to draw first, from a copy of the streams.
    let batch = field.batch(state.step, &mut state.streams.clone());
    let tried = state.scalars.get("drift/step_size").copied().unwrap_or(h);
    let tol = Tolerance {
        rtol: t.rtol,
        atol: t.atol,
    };
    let (mut copy, _, next) = integrate(field, copy, ng, &batch, h, tried, tol);
    let mut phi = copy.split_off(ng);
    field.constrain_discriminator(&mut phi);
    copy.extend(phi);
    for (i, x) in copy.into_iter().enumerate() {
        state.memory.insert(key(i), x);
    }
    state.scalars.insert("drift/step_size".into(), next);
    distance
}
