//! The gradient flow d(theta, phi)/dt = -v(theta, phi), integrated adaptively by the
//! Dormand-Prince 5(4) pair (Dormand and Prince 1980; the `dopri5` of Hairer, Norsett and
//! Wanner, "Solving ODEs I", II.4-5): each attempt takes seven evaluations of v, advances with
//! the fifth-order solution and estimates its error by the difference to the embedded
//! fourth-order one, in the norm
//! err = sqrt(mean_i (e_i / (atol + rtol max(|p_i|, |p_new,i|)))^2).
//! An attempt with err <= 1 is accepted; the next step size is h min(5, max(1/5, 0.9 err^(-1/5)))
//! either way. The `rk45` update scheme takes one accepted step per training step; a discrete
//! trial's discretisation drift (`record.drift`) integrates the flow alongside it.
//!
//! All evaluations of one integration use one batch, so the flow is that of a fixed field.

use burn::tensor::Tensor;

use super::scheme::both_gradients;
use super::{Batch, DStats, GStats, Inner, TrainingField};
use crate::backend::GanBackend;

/// Parameters of both players: theta's tensors then phi's.
pub type Point<B> = Vec<Tensor<Inner<B>, 2>>;

/// Dormand-Prince nodes' coefficients a_ij (row i: stage i + 1 from stages 1..=i).
const A: [&[f64]; 6] = [
    &[1.0 / 5.0],
    &[3.0 / 40.0, 9.0 / 40.0],
    &[44.0 / 45.0, -56.0 / 15.0, 32.0 / 9.0],
    &[
        19372.0 / 6561.0,
        -25360.0 / 2187.0,
        64448.0 / 6561.0,
        -212.0 / 729.0,
    ],
    &[
        9017.0 / 3168.0,
        -355.0 / 33.0,
        46732.0 / 5247.0,
        49.0 / 176.0,
        -5103.0 / 18656.0,
    ],
    // The fifth-order weights: stage 7 is v at the new point (first same as last).
    &[
        35.0 / 384.0,
        0.0,
        500.0 / 1113.0,
        125.0 / 192.0,
        -2187.0 / 6784.0,
        11.0 / 84.0,
    ],
];

/// Fifth-order minus fourth-order weights, over the seven stages.
const E: [f64; 7] = [
    71.0 / 57600.0,
    0.0,
    -71.0 / 16695.0,
    71.0 / 1920.0,
    -17253.0 / 339200.0,
    22.0 / 525.0,
    -1.0 / 40.0,
];

/// Bounds on the step-size factor, and the safety factor, of Hairer et al.
const GROW_MAX: f64 = 5.0;
const SHRINK_MAX: f64 = 0.2;
const SAFETY: f64 = 0.9;
/// Attempts per step before a step is taken whatever its error.
const MAX_ATTEMPTS: usize = 60;

/// The longest step, as a multiple of the first step tried: where v vanishes the error is 0
/// and the step would grow by 5 every step until it overflowed (Hairer et al.'s hmax).
pub const MAX_STEP_FACTOR: f64 = 1e3;

/// Tolerances of the error norm.
#[derive(Debug, Clone, Copy)]
pub struct Tolerance {
    pub rtol: f64,
    pub atol: f64,
}

/// v at a point, as one list (theta's part then phi's), with the measurements there.
fn field_at<B: GanBackend>(
    field: &TrainingField<B>,
    p: &Point<B>,
    ng: usize,
    batch: &Batch<Inner<B>>,
) -> (Point<B>, DStats, GStats) {
    let ((d, v_phi), (g, v_theta)) = both_gradients(field, &p[..ng], &p[ng..], batch.clone());
    (v_theta.into_iter().chain(v_phi).collect(), d, g)
}

/// p - h sum_j c_j k_j, tensor by tensor (stages with weight 0 skipped).
fn combine<B: GanBackend>(p: &Point<B>, k: &[Point<B>], c: &[f64], h: f64) -> Point<B> {
    (0..p.len())
        .map(|i| {
            let mut x = p[i].clone();
            for (kj, cj) in k.iter().zip(c) {
                if *cj != 0.0 {
                    x = x - kj[i].clone().mul_scalar(h * cj);
                }
            }
            x
        })
        .collect()
}

/// What one accepted step did.
pub struct Step<B: GanBackend> {
    pub point: Point<B>,
    /// The step size taken, and the one proposed for the next step.
    pub taken: f64,
    pub next: f64,
    /// Attempts rejected before it.
    pub rejected: u32,
    /// Whether `limit`, not the error control, set the step size taken.
    pub limited: bool,
    /// Measurements at the start point.
    pub start: (DStats, GStats),
}

/// One accepted Dormand-Prince step from `p`, trying step size `h` first; never longer than
/// `limit` (to land on a time exactly).
pub fn step<B: GanBackend>(
    field: &TrainingField<B>,
    p: &Point<B>,
    ng: usize,
    batch: &Batch<Inner<B>>,
    mut h: f64,
    limit: f64,
    tol: Tolerance,
) -> Step<B> {
    let (k1, d, g) = field_at(field, p, ng, batch);
    let mut rejected = 0;
    loop {
        let limited = h >= limit;
        h = h.min(limit);
        let mut k = vec![k1.clone()];
        for a in A {
            let (ki, _, _) = field_at(field, &combine::<B>(p, &k, a, h), ng, batch);
            k.push(ki);
        }
        // k[6] is v at the fifth-order point, which is the last combination made.
        let new = combine::<B>(p, &k[..6], A[5], h);
        let err = error_norm::<B>(p, &new, &k, h, tol);
        // A field that is not finite never passes; retrying smaller steps cannot help. The
        // step is taken (its point is not finite): the trial diverges on its next measurement,
        // which is data, and a drift's flow copy records NaN.
        if !err.is_finite() {
            return Step {
                point: new,
                taken: h,
                next: h,
                rejected,
                limited,
                start: (d, g),
            };
        }
        let factor = if err == 0.0 {
            GROW_MAX
        } else {
            (SAFETY * err.powf(-0.2)).clamp(SHRINK_MAX, GROW_MAX)
        };
        let accept = err <= 1.0 || rejected as usize + 1 >= MAX_ATTEMPTS;
        if accept {
            return Step {
                point: new,
                taken: h,
                next: h * factor,
                rejected,
                limited,
                start: (d, g),
            };
        }
        rejected += 1;
        h *= factor;
    }
}

/// The scaled RMS norm of the error estimate h sum_j E_j k_j.
fn error_norm<B: GanBackend>(
    p: &Point<B>,
    new: &Point<B>,
    k: &[Point<B>],
    h: f64,
    tol: Tolerance,
) -> f64 {
    let zero: Point<B> = p.iter().map(|x| x.zeros_like()).collect();
    // -(h sum E_j k_j), whose square is what the norm needs.
    let e = combine::<B>(&zero, k, &E, h);
    let mut n = 0usize;
    let sums: Vec<Tensor<Inner<B>, 1>> = e
        .into_iter()
        .zip(p.iter().zip(new))
        .map(|(e, (a, b))| {
            n += e.dims().iter().product::<usize>();
            let scale = a
                .clone()
                .abs()
                .max_pair(b.clone().abs())
                .mul_scalar(tol.rtol)
                + tol.atol;
            (e / scale).square().sum()
        })
        .collect();
    let total: f64 = super::read(sums).iter().sum();
    (total / n.max(1) as f64).sqrt()
}

/// The flow from `p` over time `span` on one batch, by as many accepted steps as it takes
/// (the first tries `h`): the end point, the steps taken and the step size proposed next.
pub fn integrate<B: GanBackend>(
    field: &TrainingField<B>,
    p: Point<B>,
    ng: usize,
    batch: &Batch<Inner<B>>,
    span: f64,
    mut h: f64,
    tol: Tolerance,
) -> (Point<B>, usize, f64) {
    let (mut p, mut t, mut steps) = (p, 0.0, 0);
    // The last step lands on the end exactly (a remainder below 1e-12 of the span is dropped).
    while span - t > 1e-12 * span {
        let s = step(field, &p, ng, batch, h, span - t, tol);
        p = s.point;
        t += s.taken;
        // A step shortened only to land on the end says nothing against the step size tried.
        h = if s.limited && s.rejected == 0 {
            h.max(s.next)
        } else {
            s.next
        };
        steps += 1;
        if steps > 1_000_000 {
            break;
        }
    }
    (p, steps, h)
}
