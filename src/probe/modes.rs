//! Mode coverage on Gaussian mixtures (PacGAN/VEEGAN convention, SPEC section 2): each
//! generated sample belongs to its nearest mode; it is high quality if it lies within three
//! standard deviations of that mode (Euclidean distance <= 3 std); a mode is covered if at
//! least one high-quality sample falls on it.

/// Coverage of one set of samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModeCoverage {
    /// Modes with at least one high-quality sample.
    pub modes_covered: usize,
    /// Modes of the mixture.
    pub modes_total: usize,
    /// Percentage (0 to 100) of samples that are high quality.
    pub high_quality: f64,
    /// KL(q || uniform) where q is the mode histogram of the high-quality samples; NaN when
    /// there is no high-quality sample.
    pub reverse_kl: f64,
    /// How far the generated samples of the fixed evaluation latents moved since the previous
    /// measurement: the root-mean-square distance between G(z) then and now over the set, in
    /// units of the high-quality radius (3 std of a mode; NaN at the first measurement). Below
    /// 1 the samples moved less than a mode's width: the generator has settled (the report's
    /// `converged`); a generator that cycles between modes keeps moving whatever its gradient
    /// norms do.
    pub sample_motion: f64,
}

/// The high-quality radius of a mixture whose modes have standard deviation `std`.
pub fn quality_radius(std: f64) -> f64 {
    3.0 * std
}

/// The root-mean-square distance between corresponding rows of two row-major sample sets.
pub fn sample_motion(before: &[f64], now: &[f64], dim: usize) -> f64 {
    if before.len() != now.len() || now.is_empty() || dim == 0 {
        return f64::NAN;
    }
    let sq: f64 = before.iter().zip(now).map(|(a, b)| (a - b) * (a - b)).sum();
    (sq / (now.len() / dim) as f64).sqrt()
}

/// KL(q || uniform) for q the histogram `counts` over its bins: 0 when even, log(bins) when
/// all in one; NaN for an empty histogram.
pub fn reverse_kl_to_uniform(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let q = c as f64 / total as f64;
            q * (q * counts.len() as f64).ln()
        })
        .sum()
}

/// Coverage of row-major `samples` (`dim` columns) against the mixture's `centers`.
pub fn mode_coverage(samples: &[f64], dim: usize, centers: &[Vec<f64>], std: f64) -> ModeCoverage {
    let k = centers.len();
    let mut counts = vec![0usize; k];
    let n = samples.len() / dim;
    let limit = quality_radius(std) * quality_radius(std);
    for x in samples.chunks(dim) {
        let mut best = (f64::INFINITY, 0);
        for (i, c) in centers.iter().enumerate() {
            let d2: f64 = x.iter().zip(c).map(|(a, b)| (a - b) * (a - b)).sum();
            if d2 < best.0 {
                best = (d2, i);
            }
        }
        // NaN samples (a diverged generator) compare false and so are never high quality.
        if best.0 <= limit {
            counts[best.1] += 1;
        }
    }
    let hq: usize = counts.iter().sum();
    let reverse_kl = reverse_kl_to_uniform(&counts);
    ModeCoverage {
        modes_covered: counts.iter().filter(|&&c| c > 0).count(),
        modes_total: k,
        high_quality: if n == 0 {
            0.0
        } else {
            100.0 * hq as f64 / n as f64
        },
        reverse_kl,
        sample_motion: f64::NAN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Dataset;
    use crate::spec::{DataConfig, GridData, Mixture1dData, RingData};

    fn centers(cfg: DataConfig) -> (Vec<Vec<f64>>, f64) {
        let d = Dataset::from_config(&cfg).unwrap();
        let (c, s) = d.mixture().unwrap();
        (c.to_vec(), s)
    }

    #[test]
    fn ring_all_modes_evenly_is_zero_kl() {
        let (c, std) = centers(DataConfig::Ring(RingData {
            modes: 8,
            radius: 2.0,
            std: 0.02,
        }));
        // Two samples exactly on every centre.
        let s: Vec<f64> = c.iter().chain(c.iter()).flatten().copied().collect();
        let m = mode_coverage(&s, 2, &c, std);
        assert_eq!((m.modes_covered, m.modes_total), (8, 8));
        assert_eq!(m.high_quality, 100.0);
        assert!(m.reverse_kl.abs() < 1e-12);
    }

    #[test]
    fn ring_collapsed_to_one_mode_and_off_mode_samples() {
        let (c, std) = centers(DataConfig::Ring(RingData {
            modes: 8,
            radius: 2.0,
            std: 0.02,
        }));
        // Three samples at mode 0 (one of them 2.9 std off), one 3.1 std off mode 0, one at
        // the origin (nearest mode whatever, far from all).
        let s = vec![
            2.0,
            0.0,
            2.0,
            0.0,
            2.0 + 2.9 * 0.02,
            0.0,
            2.0,
            3.1 * 0.02,
            0.0,
            0.0,
        ];
        let m = mode_coverage(&s, 2, &c, std);
        assert_eq!(m.modes_covered, 1);
        assert!((m.high_quality - 60.0).abs() < 1e-12);
        // All high-quality mass on one of 8 modes: KL = log 8.
        assert!((m.reverse_kl - 8f64.ln()).abs() < 1e-12);
    }

    #[test]
    fn grid_half_covered_kl_is_known() {
        let (c, std) = centers(DataConfig::Grid(GridData::default()));
        assert_eq!(c.len(), 25);
        // 5 modes, one sample each, plus 5 more samples on the first of them: q = (6,1,1,1,1)/10.
        let mut s = Vec::new();
        for m in c.iter().take(5) {
            s.extend_from_slice(m);
        }
        for _ in 0..5 {
            s.extend_from_slice(&[c[0][0] + 0.1, c[0][1] - 0.1]);
        }
        let m = mode_coverage(&s, 2, &c, std);
        assert_eq!(m.modes_covered, 5);
        assert_eq!(m.high_quality, 100.0);
        let want = 0.6 * (0.6f64 * 25.0).ln() + 4.0 * 0.1 * (0.1f64 * 25.0).ln();
        assert!((m.reverse_kl - want).abs() < 1e-12);
    }

    #[test]
    fn mixture1d_and_nan_samples() {
        let (c, std) = centers(DataConfig::Mixture1d(Mixture1dData {
            modes: 3,
            spread: 4.0,
            std: 0.1,
        }));
        assert_eq!(c, vec![vec![-4.0], vec![0.0], vec![4.0]]);
        let s = vec![-4.05, 0.29, 0.31, 4.0, f64::NAN, 2.0];
        let m = mode_coverage(&s, 1, &c, std);
        assert_eq!(m.modes_covered, 3);
        assert!((m.high_quality - 50.0).abs() < 1e-12);
        assert!(m.reverse_kl.abs() < 1e-12);
        let none = mode_coverage(&[f64::NAN, 2.0], 1, &c, std);
        assert_eq!(none.modes_covered, 0);
        assert_eq!(none.high_quality, 0.0);
        assert!(none.reverse_kl.is_nan());
    }

    #[test]
    fn sample_motion_is_the_rms_distance_between_corresponding_samples() {
        // Two 2-D samples moved by (3, 4) and (0, 0): sqrt((25 + 0) / 2).
        let before = [0.0, 0.0, 1.0, 1.0];
        let now = [3.0, 4.0, 1.0, 1.0];
        assert_eq!(sample_motion(&before, &now, 2), 12.5f64.sqrt());
        assert_eq!(sample_motion(&now, &now, 2), 0.0);
        assert!(sample_motion(&before, &now[..2], 2).is_nan());
    }
}
