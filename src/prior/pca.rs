//! The PCA-Gaussian prior model, fitted in closed form: the data's mean and the top k
//! eigenpairs (lambda_i, v_i) of its covariance (maximum likelihood, divided by n). P maps a
//! latent row to mean + sum_i z_i sqrt(lambda_i) v_i, a Gaussian with the data's covariance
//! along those k directions.
//!
//! Fit quality: `explained_variance` (sum of the k eigenvalues over the trace) and
//! `log_likelihood`, the mean log-density of the fit rows under probabilistic PCA (Tipping and
//! Bishop 1999: the discarded directions share their mean variance); absent when the
//! covariance is singular.

use nalgebra::{DMatrix, DVector};

use super::{FitReport, FittedPrior, PriorForm};

/// Mean and maximum-likelihood covariance of row-major `rows` of `dim` columns.
pub fn mean_and_covariance(rows: &[f64], dim: usize) -> (DVector<f64>, DMatrix<f64>) {
    let n = rows.len() / dim;
    let x = DMatrix::from_row_slice(n, dim, rows);
    let mean = DVector::from_iterator(dim, (0..dim).map(|j| x.column(j).sum() / n as f64));
    let mut centred = x;
    for mut row in centred.row_iter_mut() {
        row -= mean.transpose();
    }
    let cov = centred.transpose() * &centred / n as f64;
    (mean, cov)
}

/// The fit on row-major `rows` of `dim` columns, keeping `k` directions.
pub fn fit(rows: &[f64], dim: usize, k: usize) -> FittedPrior {
    let n = rows.len() / dim;
    let (mean, cov) = mean_and_covariance(rows, dim);
    let eig = cov.symmetric_eigen();
    // Eigenpairs by decreasing eigenvalue (ties by index, so the order is reproducible).
    let mut order: Vec<usize> = (0..dim).collect();
    order.sort_by(|&a, &b| {
        eig.eigenvalues[b]
            .total_cmp(&eig.eigenvalues[a])
            .then(a.cmp(&b))
    });
    let lambda: Vec<f64> = order.iter().map(|&i| eig.eigenvalues[i].max(0.0)).collect();
    let mut w = Vec::with_capacity(k * dim);
    for &i in &order[..k] {
        let v = eig.eigenvectors.column(i);
        // A sign convention for reproducible values: each direction's largest entry positive.
        let big = v
            .iter()
            .copied()
            .fold(0.0f64, |m, x| if x.abs() > m.abs() { x } else { m });
        let sign = if big < 0.0 { -1.0 } else { 1.0 };
        let scale = eig.eigenvalues[i].max(0.0).sqrt() * sign;
        w.extend(v.iter().map(|x| x * scale));
    }
    let total: f64 = lambda.iter().sum();
    let kept: f64 = lambda[..k].iter().sum();
    let mut report = FitReport {
        kind: "pca_gaussian".into(),
        rows: n,
        ..Default::default()
    };
    report.quality.insert(
        "explained_variance".into(),
        if total > 0.0 { kept / total } else { 1.0 },
    );
    // Probabilistic PCA: eigenvalues lambda_1..k, then the mean of the rest; the trace term
    // tr(C^-1 S) is then exactly dim.
    let rest = if k < dim {
        lambda[k..].iter().sum::<f64>() / (dim - k) as f64
    } else {
        0.0
    };
    let variances: Vec<f64> = (0..dim)
        .map(|i| if i < k { lambda[i] } else { rest })
        .collect();
    if variances.iter().all(|&v| v > 0.0) {
        let log_det: f64 = variances.iter().map(|v| v.ln()).sum();
        let ll = -0.5 * (dim as f64 * (2.0 * std::f64::consts::PI).ln() + log_det + dim as f64);
        report.quality.insert("log_likelihood".into(), ll);
    }
    FittedPrior {
        form: PriorForm::PcaGaussian { k, dim },
        values: vec![mean.iter().copied().collect(), w],
        report,
        standardise: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};
    use rand_distr::{Distribution, StandardNormal};

    #[test]
    fn recovers_the_mean_and_covariance_of_a_known_gaussian() {
        // x = mu + L e with e standard normal: covariance L L^T.
        let mu = [1.5, -2.0, 0.5];
        let l = [[2.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.2, 0.4]];
        let mut rng = stream(3, Stream::Data);
        let n = 200_000;
        let mut rows = Vec::with_capacity(3 * n);
        for _ in 0..n {
            let e: Vec<f64> = (0..3).map(|_| StandardNormal.sample(&mut rng)).collect();
            for i in 0..3 {
                rows.push(mu[i] + (0..3).map(|j| l[i][j] * e[j]).sum::<f64>());
            }
        }
        let p = fit(&rows, 3, 3);
        // The model's mean and its covariance w^T w against the truth.
        for i in 0..3 {
            assert!((p.values[0][i] - mu[i]).abs() < 0.02, "{:?}", p.values[0]);
        }
        let w = DMatrix::from_row_slice(3, 3, &p.values[1]);
        let model = w.transpose() * &w;
        for i in 0..3 {
            for j in 0..3 {
                let truth: f64 = (0..3).map(|m| l[i][m] * l[j][m]).sum();
                assert!(
                    (model[(i, j)] - truth).abs() < 0.03,
                    "cov[{i}][{j}] = {} vs {truth}",
                    model[(i, j)]
                );
            }
        }
        assert_eq!(p.report.quality["explained_variance"], 1.0);
        // The full-rank Gaussian's mean log-density: -(d ln 2 pi + ln det S + d) / 2.
        let det: f64 = (0..3).map(|i| l[i][i] * l[i][i]).product();
        let want = -0.5 * (3.0 * (2.0 * std::f64::consts::PI).ln() + det.ln() + 3.0);
        assert!((p.report.quality["log_likelihood"] - want).abs() < 0.01);
    }

    #[test]
    fn keeps_the_top_directions_and_reports_their_share() {
        // Independent coordinates of variance 9, 4, 1: k = 2 keeps the first two.
        let mut rng = stream(4, Stream::Data);
        let mut rows = Vec::new();
        for _ in 0..100_000 {
            for s in [3.0, 2.0, 1.0] {
                let e: f64 = StandardNormal.sample(&mut rng);
                rows.push(s * e);
            }
        }
        let p = fit(&rows, 3, 2);
        let w = &p.values[1];
        assert!(
            (w[0] - 3.0).abs() < 0.05 && w[1].abs() < 0.1 && w[2].abs() < 0.1,
            "{w:?}"
        );
        assert!(
            (w[4] - 2.0).abs() < 0.05 && w[3].abs() < 0.1 && w[5].abs() < 0.1,
            "{w:?}"
        );
        let share = p.report.quality["explained_variance"];
        assert!((share - 13.0 / 14.0).abs() < 0.01, "{share}");
    }
}
