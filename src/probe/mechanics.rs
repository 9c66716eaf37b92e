//! The mechanics of the game at a point (Balduzzi et al. 2018; SPEC section 2): J's symmetric
//! part S = (J + J^T)/2 (the potential part) and antisymmetric part A = (J - J^T)/2 (the
//! rotation), the Hamiltonian |v|^2/2, and what kind of point it is (Berard et al. 2020).

use nalgebra::DMatrix;

use super::spectrum::{symmetric_eigenvalues, Eigenvalue};

/// What kind of point a probe found, in SPEC section 2's terms (`point_class` in metrics.csv
/// holds the number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointClass {
    /// Some eigenvalue of J has a real part <= 0: not locally stable for the gradient flow.
    NotStable = 0,
    /// Locally stable, but H_GG or H_DD has a negative eigenvalue: a stable point that is a
    /// saddle of a player's loss.
    StableSaddle = 1,
    /// Locally stable, and H_GG and H_DD are positive semidefinite: a local Nash equilibrium.
    LocalNash = 2,
}

impl PointClass {
    pub fn name(self) -> &'static str {
        match self {
            PointClass::NotStable => "not_stable",
            PointClass::StableSaddle => "stable_saddle",
            PointClass::LocalNash => "local_nash",
        }
    }
}

/// The mechanics measured at one point. NaN (and no class) where the probe had only part of
/// the spectrum (Krylov probes of large games).
#[derive(Debug, Clone, PartialEq)]
pub struct Mechanics {
    /// |A|_F / |J|_F: 1 for a purely rotational game (the bilinear one), 0 for a potential
    /// game (J symmetric).
    pub rotation: f64,
    /// Smallest and largest eigenvalue of S.
    pub sym_min: f64,
    pub sym_max: f64,
    /// |v|^2 / 2 at the point, on the probe batch.
    pub hamiltonian: f64,
    pub class: Option<PointClass>,
}

impl Mechanics {
    /// Only the Hamiltonian (the probe had no full Jacobian).
    pub fn partial(v: &[f64]) -> Mechanics {
        Mechanics {
            rotation: f64::NAN,
            sym_min: f64::NAN,
            sym_max: f64::NAN,
            hamiltonian: hamiltonian(v),
            class: None,
        }
    }
}

/// |v|^2 / 2.
pub fn hamiltonian(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>() / 2.0
}

/// |A|_F / |J|_F of a row-major `n x n` Jacobian (NaN for J = 0).
pub fn rotation(jac: &[f64], n: usize) -> f64 {
    let (mut anti, mut all) = (0.0, 0.0);
    for i in 0..n {
        for j in 0..n {
            let a = (jac[i * n + j] - jac[j * n + i]) / 2.0;
            anti += a * a;
            all += jac[i * n + j] * jac[i * n + j];
        }
    }
    if all > 0.0 {
        (anti / all).sqrt()
    } else {
        f64::NAN
    }
}

/// The class of a point from all eigenvalues of J and of both players' Hessians. A real part
/// counts as positive, and a Hessian eigenvalue as non-negative, beyond a tolerance of 1e-10
/// times the largest magnitude (at least 1e-10): the rounding of a purely imaginary pair or of
/// a singular Hessian must not decide the class.
pub fn classify(game: &[Eigenvalue], hessian_g: &[f64], hessian_d: &[f64]) -> Option<PointClass> {
    let all_finite = game.iter().all(|e| e.re.is_finite() && e.im.is_finite())
        && hessian_g.iter().chain(hessian_d).all(|x| x.is_finite());
    if game.is_empty() || !all_finite {
        return None;
    }
    let scale = game
        .iter()
        .map(|e| e.re.hypot(e.im))
        .chain(hessian_g.iter().chain(hessian_d).map(|x| x.abs()))
        .fold(1.0f64, f64::max);
    let tol = 1e-10 * scale;
    if game.iter().any(|e| e.re <= tol) {
        return Some(PointClass::NotStable);
    }
    let psd = |h: &[f64]| h.iter().all(|&x| x >= -tol);
    Some(if psd(hessian_g) && psd(hessian_d) {
        PointClass::LocalNash
    } else {
        PointClass::StableSaddle
    })
}

/// The mechanics of a point from its full Jacobian (row-major `n x n`), J's eigenvalues, the
/// players' Hessian eigenvalues and v there.
pub fn measure(
    jac: &[f64],
    n: usize,
    game: &[Eigenvalue],
    hessian_g: &[f64],
    hessian_d: &[f64],
    v: &[f64],
) -> Mechanics {
    let (sym_min, sym_max) = if n > 0 && jac.iter().all(|x| x.is_finite()) {
        let j = DMatrix::from_row_slice(n, n, jac);
        let e = symmetric_eigenvalues((&j + j.transpose()) * 0.5);
        (e[0], e[n - 1])
    } else {
        (f64::NAN, f64::NAN)
    };
    Mechanics {
        rotation: rotation(jac, n),
        sym_min,
        sym_max,
        hamiltonian: hamiltonian(v),
        class: classify(game, hessian_g, hessian_d),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::spectrum::dense_eigenvalues;

    fn eig(j: &[f64], n: usize) -> Vec<Eigenvalue> {
        dense_eigenvalues(j, n)
    }

    #[test]
    fn the_bilinear_game_is_all_rotation_and_a_potential_game_none() {
        // The bilinear game's J = [[0, 1], [-1, 0]]: S = 0, |A| = |J|.
        let bilinear = [0.0, 1.0, -1.0, 0.0];
        assert_eq!(rotation(&bilinear, 2), 1.0);
        let m = measure(
            &bilinear,
            2,
            &eig(&bilinear, 2),
            &[0.0],
            &[0.0],
            &[3.0, 4.0],
        );
        assert_eq!((m.sym_min, m.sym_max), (0.0, 0.0));
        assert_eq!(m.hamiltonian, 12.5);
        // Purely imaginary eigenvalues: not locally stable.
        assert_eq!(m.class, Some(PointClass::NotStable));
        // A potential game: J is the (symmetric) Hessian of one function.
        let potential = [2.0, 0.5, 0.5, 1.0];
        assert_eq!(rotation(&potential, 2), 0.0);
        // Half and half: J = S + A with |S|_F = |A|_F gives 1/sqrt 2.
        let mixed = [1.0, 1.0, -1.0, 1.0];
        assert!((rotation(&mixed, 2) - 0.5f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn points_are_classified_by_the_spectrum_and_both_hessians() {
        // J with eigenvalues 1 +- 2i (stable) and players' Hessians both positive: Nash.
        let j = [1.0, 2.0, -2.0, 1.0];
        let e = eig(&j, 2);
        assert_eq!(classify(&e, &[1.0], &[1.0]), Some(PointClass::LocalNash));
        // The same spectrum with the generator's Hessian negative: a stable saddle
        // (Berard et al.'s non-Nash stable points).
        assert_eq!(
            classify(&e, &[-0.5], &[1.0]),
            Some(PointClass::StableSaddle)
        );
        // A singular Hessian (0 up to rounding) still counts as positive semidefinite.
        assert_eq!(
            classify(&e, &[-1e-14, 2.0], &[0.0]),
            Some(PointClass::LocalNash)
        );
        // One eigenvalue with a negative real part: not stable, whatever the Hessians.
        let j = [-0.1, 0.0, 0.0, 1.0];
        assert_eq!(
            classify(&eig(&j, 2), &[1.0], &[1.0]),
            Some(PointClass::NotStable)
        );
        // Nothing to classify from.
        assert_eq!(classify(&[], &[1.0], &[1.0]), None);
        assert_eq!(
            classify(
                &[Eigenvalue {
                    re: f64::NAN,
                    im: 0.0
                }],
                &[1.0],
                &[1.0]
            ),
            None
        );
    }
}
