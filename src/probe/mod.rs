//! Measurements of a trial that are not part of training itself: mode coverage, and the
//! stability probes (game-Jacobian spectrum and player Hessians) on a [`field::GameField`].

pub mod field;
pub mod modes;
pub mod spectrum;

use nalgebra::{DMatrix, SymmetricEigen};

use crate::backend::{CpuF64, CPU};
use field::GameField;
use spectrum::{dense_eigenvalues, figures, simultaneous_gd_radius, Eigenvalue, SpectrumFigures};

/// What one probe found at one point.
#[derive(Debug, Clone)]
pub struct ProbeReport {
    /// Every eigenvalue of the game Jacobian J (sorted by real part).
    pub game: Vec<Eigenvalue>,
    /// Eigenvalues of H_GG = d(grad_theta L_G)/d(theta), ascending.
    pub hessian_g: Vec<f64>,
    /// Eigenvalues of H_DD = d(grad_phi L_D)/d(phi), ascending.
    pub hessian_d: Vec<f64>,
    pub figures: SpectrumFigures,
    /// Spectral radius of I - H J for simultaneous gradient descent at the trial's learning
    /// rates (exact for plain SGD; for Adam and RMSProp it uses their nominal rates).
    pub gd_radius: f64,
}

fn symmetric_eigenvalues(block: DMatrix<f64>) -> Vec<f64> {
    if block.nrows() == 0 {
        return Vec::new();
    }
    // Exactly symmetric in exact arithmetic; average away the rounding.
    let sym = (&block + block.transpose()) * 0.5;
    let mut e: Vec<f64> = SymmetricEigen::new(sym)
        .eigenvalues
        .iter()
        .copied()
        .collect();
    e.sort_by(f64::total_cmp);
    e
}

/// The full spectrum at flat parameters `p` (theta then phi), in f64 on the CPU.
pub fn probe_dense(field: &GameField, p: &[f64], lr_g: f64, lr_d: f64) -> ProbeReport {
    let (ng, _, n) = field.dims();
    let jac = field.jacobian::<CpuF64>(p, &CPU);
    let game = dense_eigenvalues(&jac, n);
    let m = DMatrix::from_row_slice(n, n, &jac);
    ProbeReport {
        hessian_g: symmetric_eigenvalues(m.view((0, 0), (ng, ng)).into_owned()),
        hessian_d: symmetric_eigenvalues(m.view((ng, ng), (n - ng, n - ng)).into_owned()),
        figures: figures(&game),
        gd_radius: simultaneous_gd_radius(&jac, n, ng, lr_g, lr_d),
        game,
    }
}
