//! The matrices that govern each update scheme near a point, beside the game Jacobian J.
//!
//! - The scheme's field matrix: the Jacobian of the field the scheme follows, J itself for the
//!   schemes that follow v, J + gamma J^T J for consensus (Mescheder et al. 2017) and
//!   J + lambda A^T J for SGA (Balduzzi et al. 2018; A = (J - J^T) / 2, lambda with the sign
//!   the alignment rule gives at a stationary point, +). Both are the derivative of the
//!   modified field at a stationary point, where the terms with v vanish; elsewhere they are
//!   its linear part. Its eigenvalues read like J's (SPEC section 2: the continuous-time
//!   dynamics is locally stable where all real parts are positive).
//! - The step map: the linear map p -> p' of one training step of the scheme with plain
//!   steps of size H = diag(eta) (each coordinate's learning rate, the nominal one for Adam
//!   and RMSProp), exact for a linear field. With P_G, P_D the players' coordinates,
//!   M_D = I - P_D H J (one discriminator update) and M_G = I - P_G H J:
//!   simultaneous (I - H J) M_D^(k-1), k = n_critic; consensus and SGA (I - H J_s) M_D^(k-1);
//!   alternating M_G M_D^k; alternating with the generator first M_D^k M_G; extragradient
//!   (I - H J + H J H J) M_D^(k-1); optimistic (n_critic = 1) on the pair (p_t, p_(t-1)):
//!   [[I - 2 H J, H J], [I, 0]]; RK4 with step h the Taylor polynomial
//!   sum_(j <= 4) (-h J)^j / j!. Its spectral radius below 1 is local convergence of the
//!   scheme. RK45 chooses its own steps and has no fixed step map here.

use nalgebra::DMatrix;

use super::spectrum::{dense_eigenvalues, Eigenvalue};
use crate::spec::{TrainConfig, UpdateScheme};

/// The scheme's matrices' spectra at one probe.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemeOperator {
    /// Eigenvalues of the scheme's field matrix where it is not J (consensus, SGA); empty
    /// where it is J (then J's eigenvalues are the ones).
    pub field: Vec<Eigenvalue>,
    /// Eigenvalues of the step map (2n of them for the optimistic scheme); empty where there
    /// is none (RK45; the optimistic scheme with n_critic > 1).
    pub step: Vec<Eigenvalue>,
    /// Their largest modulus (NaN without a step map).
    pub step_radius: f64,
}

/// The field matrix of the scheme `t` names, row-major, when it is not J.
pub fn field_matrix(jac: &[f64], n: usize, t: &TrainConfig) -> Option<DMatrix<f64>> {
    let j = DMatrix::from_row_slice(n, n, jac);
    match t.update {
        UpdateScheme::Consensus => Some(&j + j.transpose() * &j * t.consensus_weight),
        UpdateScheme::Sga => {
            let a_t = (j.transpose() - &j) * 0.5;
            Some(&j + a_t * &j * t.sga_weight)
        }
        _ => None,
    }
}

/// The step map of the scheme `t` names with per-coordinate step sizes `etas` (the first `ng`
/// coordinates are the generator's): an `n x n` matrix, `2n x 2n` for the optimistic scheme,
/// None where there is none.
pub fn step_map(
    jac: &[f64],
    n: usize,
    ng: usize,
    etas: &[f64],
    t: &TrainConfig,
) -> Option<DMatrix<f64>> {
    let j = DMatrix::from_row_slice(n, n, jac);
    let id = DMatrix::<f64>::identity(n, n);
    // Products with the diagonal H are row scalings, and products with I are left out: both
    // give the bits the dense products gave (each entry is one product, or itself, plus
    // zeros), at O(n^2) instead of O(n^3) (a 2403-parameter probe of an alternating scheme
    // spent 2 s in them).
    let scaled = |m: &DMatrix<f64>, generator: Option<bool>| {
        let mut out = m.clone();
        for (i, mut row) in out.row_iter_mut().enumerate() {
            match generator.is_none_or(|g| (i < ng) == g) {
                true => row *= etas[i],
                false => row.fill(0.0),
            }
        }
        out
    };
    let m_d = &id - scaled(&j, Some(false));
    let m_g = &id - scaled(&j, Some(true));
    // m^k as m (m (... m)); None for k = 0 (the identity).
    let power =
        |m: &DMatrix<f64>, k: usize| (k > 0).then(|| (1..k).fold(m.clone(), |acc, _| m * acc));
    // a p, where p = None is the identity.
    let times = |a: DMatrix<f64>, p: Option<DMatrix<f64>>| match p {
        Some(p) => a * p,
        None => a,
    };
    let k = t.n_critic;
    let pre = power(&m_d, k - 1);
    let hj = scaled(&j, None);
    Some(match t.update {
        UpdateScheme::Simultaneous => times(&id - &hj, pre),
        UpdateScheme::Consensus | UpdateScheme::Sga => {
            let js = field_matrix(jac, n, t)?;
            times(&id - scaled(&js, None), pre)
        }
        UpdateScheme::Alternating => times(m_g, power(&m_d, k)),
        UpdateScheme::AlternatingGFirst => match power(&m_d, k) {
            Some(p) => p * &m_g,
            None => m_g,
        },
        UpdateScheme::Extragradient => times(&id - &hj + &hj * &hj, pre),
        UpdateScheme::Optimistic => {
            if k != 1 {
                return None;
            }
            let mut m = DMatrix::zeros(2 * n, 2 * n);
            m.view_mut((0, 0), (n, n)).copy_from(&(&id - &hj * 2.0));
            m.view_mut((0, n), (n, n)).copy_from(&hj);
            m.view_mut((n, 0), (n, n)).copy_from(&id);
            m
        }
        UpdateScheme::Rk4 => {
            // Validation gives rk4 one step size. The first term is (-h J) / 1! itself.
            let z = -&hj;
            let mut term = z.clone();
            let mut sum = &id + &z;
            for i in 2..=4 {
                term = &term * &z / i as f64;
                sum += &term;
            }
            sum
        }
        UpdateScheme::Rk45 => return None,
    })
}

/// Eigenvalues of a step map M = I - top K, taken from K = (I - M) / top: near the identity
/// M's eigenvalues cluster at 1, where the Schur iteration is slow (see
/// `spectrum::gd_radius_per_coordinate`).
fn step_eigenvalues(m: &DMatrix<f64>, top: f64) -> Vec<Eigenvalue> {
    let dim = m.nrows();
    let top = if top > 0.0 { top } else { 1.0 };
    let k = (DMatrix::<f64>::identity(dim, dim) - m) / top;
    let row_major: Vec<f64> = k.transpose().iter().copied().collect();
    dense_eigenvalues(&row_major, dim)
        .into_iter()
        .map(|e| Eigenvalue {
            re: 1.0 - top * e.re,
            im: -top * e.im,
        })
        .collect()
}

/// The largest modulus of a spectrum (NaN if empty or not finite).
pub fn radius(eig: &[Eigenvalue]) -> f64 {
    if eig.is_empty() {
        return f64::NAN;
    }
    eig.iter().map(|e| e.re.hypot(e.im)).fold(
        0.0,
        |a: f64, b| if b.is_nan() { f64::NAN } else { a.max(b) },
    )
}

/// The scheme's matrices at a point with Jacobian `jac` (row-major, `n x n`), for
/// per-coordinate step sizes `etas`; `plain_step` holds the eigenvalues of I - diag(etas) J
/// (`spectrum::gd_step_eigenvalues`), the step map of simultaneous steps, which the probe has
/// already taken for its gradient-descent radius.
pub fn measure(
    jac: &[f64],
    n: usize,
    ng: usize,
    etas: &[f64],
    plain_step: &[Eigenvalue],
    t: &TrainConfig,
) -> SchemeOperator {
    let field = field_matrix(jac, n, t)
        .map(|m| {
            let row_major: Vec<f64> = m.transpose().iter().copied().collect();
            dense_eigenvalues(&row_major, n)
        })
        .unwrap_or_default();
    let top = etas.iter().copied().fold(0.0f64, f64::max);
    let step = if t.update == UpdateScheme::Simultaneous && t.n_critic == 1 {
        plain_step.to_vec()
    } else {
        step_map(jac, n, ng, etas, t)
            .map(|m| step_eigenvalues(&m, top))
            .unwrap_or_default()
    };
    SchemeOperator {
        field,
        step_radius: radius(&step),
        step,
    }
}
