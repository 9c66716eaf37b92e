//! Data distributions. Samples are drawn on the host from the trial's seeded stream, so the
//! same seed gives the same batches on every backend.

pub mod images;

use std::f64::consts::PI;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use burn::tensor::{backend::Backend, Tensor};

use std::sync::Arc;

use crate::spec::{DataConfig, LatentConfig, Prior, RegressionFn};

use images::{ImageSet, ImageShape};

/// A distribution to sample training data from.
#[derive(Debug, Clone)]
pub struct Dataset {
    kind: Kind,
    dim: usize,
}

#[derive(Debug, Clone)]
enum Kind {
    Point(Vec<f64>),
    /// Equal-weight isotropic Gaussian mixture.
    Mixture {
        centers: Vec<Vec<f64>>,
        std: f64,
    },
    SwissRoll {
        noise: f64,
        scale: f64,
    },
    Regression {
        function: RegressionFn,
        range: f64,
        noise: f64,
    },
    /// Rows of a table, drawn uniformly with replacement (row-major, `dim` columns).
    Table {
        rows: Vec<f64>,
    },
    /// Images (bytes, scaled to [-1, 1] when drawn), uniformly with replacement.
    Images(Arc<ImageSet>),
}

impl Dataset {
    /// Builds the distribution a configuration names (reads the CSV file for `csv`).
    pub fn from_config(cfg: &DataConfig) -> anyhow::Result<Dataset> {
        let (kind, dim) = match cfg {
            DataConfig::Dirac(d) => (Kind::Point(vec![d.at]), 1),
            DataConfig::Mixture1d(m) => {
                let centers = (0..m.modes)
                    .map(|k| {
                        if m.modes == 1 {
                            vec![0.0]
                        } else {
                            vec![-m.spread + 2.0 * m.spread * k as f64 / (m.modes - 1) as f64]
                        }
                    })
                    .collect();
                (
                    Kind::Mixture {
                        centers,
                        std: m.std,
                    },
                    1,
                )
            }
            DataConfig::Ring(r) => {
                let centers = (0..r.modes)
                    .map(|k| {
                        let a = 2.0 * PI * k as f64 / r.modes as f64;
                        vec![r.radius * a.cos(), r.radius * a.sin()]
                    })
                    .collect();
                (
                    Kind::Mixture {
                        centers,
                        std: r.std,
                    },
                    2,
                )
            }
            DataConfig::Grid(g) => {
                let half = (g.side as f64 - 1.0) / 2.0;
                let mut centers = Vec::new();
                for i in 0..g.side {
                    for j in 0..g.side {
                        centers.push(vec![
                            (i as f64 - half) * g.spacing,
                            (j as f64 - half) * g.spacing,
                        ]);
                    }
                }
                (
                    Kind::Mixture {
                        centers,
                        std: g.std,
                    },
                    2,
                )
            }
            DataConfig::SwissRoll(s) => (
                Kind::SwissRoll {
                    noise: s.noise,
                    scale: s.scale,
                },
                2,
            ),
            DataConfig::Regression(r) => (
                Kind::Regression {
                    function: r.function,
                    range: r.range,
                    noise: r.noise,
                },
                2,
            ),
            DataConfig::Csv(c) => {
                let (rows, dim) = crate::table::load_csv(std::path::Path::new(&c.path))
                    .map_err(|m| anyhow::anyhow!("{}: {m}", c.path))?;
                (Kind::Table { rows }, dim)
            }
            DataConfig::Images(c) => {
                let set = images::load(c, images::Split::Train)?;
                let dim = set.shape.len();
                (Kind::Images(set), dim)
            }
        };
        Ok(Dataset { kind, dim })
    }

    /// Dimension of a sample.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// All rows of a CSV table (row-major), or `None` for a distribution.
    pub fn table_rows(&self) -> Option<&[f64]> {
        match &self.kind {
            Kind::Table { rows } => Some(rows),
            _ => None,
        }
    }

    /// The images' shape, for image data.
    pub fn image_shape(&self) -> Option<ImageShape> {
        match &self.kind {
            Kind::Images(set) => Some(set.shape),
            _ => None,
        }
    }

    /// The mixture's centres and per-coordinate std, for mode coverage.
    pub fn mixture(&self) -> Option<(&[Vec<f64>], f64)> {
        match &self.kind {
            Kind::Mixture { centers, std } => Some((centers, *std)),
            _ => None,
        }
    }

    /// `n` samples, row-major `n x dim`.
    pub fn sample<R: Rng>(&self, rng: &mut R, n: usize) -> Vec<f64> {
        let mut out = Vec::with_capacity(n * self.dim);
        let normal = |rng: &mut R| -> f64 { StandardNormal.sample(rng) };
        match &self.kind {
            Kind::Point(p) => {
                for _ in 0..n {
                    out.extend_from_slice(p);
                }
            }
            Kind::Mixture { centers, std } => {
                for _ in 0..n {
                    let c = &centers[rng.random_range(0..centers.len())];
                    for &m in c {
                        out.push(m + std * normal(rng));
                    }
                }
            }
            Kind::SwissRoll { noise, scale } => {
                for _ in 0..n {
                    let t = 1.5 * PI * (1.0 + 2.0 * rng.random::<f64>());
                    let x = t * t.cos() + noise * normal(rng);
                    let y = t * t.sin() + noise * normal(rng);
                    out.push(scale * x);
                    out.push(scale * y);
                }
            }
            Kind::Regression {
                function,
                range,
                noise,
            } => {
                for _ in 0..n {
                    let x = rng.random_range(-range..=*range);
                    let f = match function {
                        RegressionFn::Linear => x,
                        RegressionFn::Quadratic => x * x,
                        RegressionFn::Sin => x.sin(),
                    };
                    out.push(x);
                    out.push(f + noise * normal(rng));
                }
            }
            Kind::Table { rows } => {
                let count = rows.len() / self.dim;
                for _ in 0..n {
                    let r = rng.random_range(0..count);
                    out.extend_from_slice(&rows[r * self.dim..(r + 1) * self.dim]);
                }
            }
            Kind::Images(set) => return set.sample(rng, n),
        }
        out
    }
}

/// The means of the `mixture` latent prior (see [`crate::spec::Prior::Mixture`]).
pub fn latent_means(cfg: &LatentConfig) -> Vec<Vec<f64>> {
    let k = cfg.components;
    (0..k)
        .map(|j| {
            let mut m = vec![0.0; cfg.dim];
            if cfg.dim == 1 {
                if k > 1 {
                    m[0] = -cfg.spread + 2.0 * cfg.spread * j as f64 / (k - 1) as f64;
                }
            } else {
                let angle = 2.0 * PI * j as f64 / k as f64;
                m[0] = cfg.spread * angle.cos();
                m[1] = cfg.spread * angle.sin();
            }
            m
        })
        .collect()
}

/// Latent samples, row-major `n x dim`.
pub fn sample_latent<R: Rng>(cfg: &LatentConfig, rng: &mut R, n: usize) -> Vec<f64> {
    let dim = cfg.dim;
    match cfg.prior {
        Prior::Normal => (0..n * dim).map(|_| StandardNormal.sample(rng)).collect(),
        Prior::Uniform => (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect(),
        Prior::Mixture => {
            let means = latent_means(cfg);
            let mut out = Vec::with_capacity(n * dim);
            for _ in 0..n {
                let m = &means[rng.random_range(0..means.len())];
                for mi in m {
                    let e: f64 = StandardNormal.sample(rng);
                    out.push(mi + cfg.std * e);
                }
            }
            out
        }
    }
}

/// (mean, std) of each latent coordinate under `cfg`'s prior; `None` for the standard normal.
pub fn latent_moments(cfg: &LatentConfig) -> Option<Vec<(f64, f64)>> {
    match cfg.prior {
        Prior::Normal => None,
        Prior::Uniform => Some(vec![(0.0, (1.0f64 / 3.0).sqrt()); cfg.dim]),
        Prior::Mixture => {
            let means = latent_means(cfg);
            let k = means.len() as f64;
            Some(
                (0..cfg.dim)
                    .map(|i| {
                        let mean = means.iter().map(|m| m[i]).sum::<f64>() / k;
                        let second = means.iter().map(|m| m[i] * m[i]).sum::<f64>() / k;
                        (mean, (cfg.std * cfg.std + second - mean * mean).sqrt())
                    })
                    .collect(),
            )
        }
    }
}

/// The marginal distribution of one latent coordinate, whose CDF turns it into a uniform
/// number (the Gaussian-mixture prior model picks its component with it).
#[derive(Debug, Clone, PartialEq)]
pub enum LatentMarginal {
    /// Uniform on [-1, 1].
    Uniform,
    /// An equal-weight mixture of Gaussians, as (mean, std) pairs.
    Gaussians(Vec<(f64, f64)>),
}

/// The marginal of latent coordinate `coord` under `cfg`'s prior.
pub fn latent_marginal(cfg: &LatentConfig, coord: usize) -> LatentMarginal {
    match cfg.prior {
        Prior::Normal => LatentMarginal::Gaussians(vec![(0.0, 1.0)]),
        Prior::Uniform => LatentMarginal::Uniform,
        Prior::Mixture => LatentMarginal::Gaussians(
            latent_means(cfg)
                .iter()
                .map(|m| (m.get(coord).copied().unwrap_or(0.0), cfg.std))
                .collect(),
        ),
    }
}

impl LatentMarginal {
    /// The CDF, elementwise, in [0, 1].
    pub fn cdf<B: Backend, const D: usize>(&self, z: Tensor<B, D>) -> Tensor<B, D> {
        match self {
            LatentMarginal::Uniform => z.add_scalar(1.0).mul_scalar(0.5).clamp(0.0, 1.0),
            LatentMarginal::Gaussians(parts) => {
                let w = 1.0 / parts.len() as f64;
                let mut out: Option<Tensor<B, D>> = None;
                for (m, s) in parts {
                    // Phi(t) = (1 + erf(t / sqrt 2)) / 2
                    let phi = z
                        .clone()
                        .sub_scalar(*m)
                        .div_scalar(s * std::f64::consts::SQRT_2)
                        .erf()
                        .add_scalar(1.0)
                        .mul_scalar(0.5 * w);
                    out = Some(match out {
                        Some(o) => o + phi,
                        None => phi,
                    });
                }
                out.expect("a marginal has a part")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};
    use crate::spec::{GridData, RingData};

    #[test]
    fn ring_samples_lie_near_their_modes() {
        let d = Dataset::from_config(&DataConfig::Ring(RingData {
            modes: 8,
            radius: 2.0,
            std: 0.01,
        }))
        .unwrap();
        let x = d.sample(&mut stream(1, Stream::Data), 1000);
        for p in x.chunks(2) {
            let r = (p[0] * p[0] + p[1] * p[1]).sqrt();
            assert!((r - 2.0).abs() < 0.06, "radius {r}");
        }
    }

    #[test]
    fn grid_has_25_centres_spaced_evenly_around_zero() {
        let d = Dataset::from_config(&DataConfig::Grid(GridData::default())).unwrap();
        let (c, std) = d.mixture().unwrap();
        assert_eq!(c.len(), 25);
        assert_eq!(std, 0.05);
        assert!(
            c.contains(&vec![-4.0, -4.0])
                && c.contains(&vec![4.0, 4.0])
                && c.contains(&vec![0.0, 0.0])
        );
    }

    #[test]
    fn same_seed_same_samples() {
        let d = Dataset::from_config(&DataConfig::Ring(RingData::default())).unwrap();
        let a = d.sample(&mut stream(7, Stream::Data), 10);
        let b = d.sample(&mut stream(7, Stream::Data), 10);
        let c = d.sample(&mut stream(8, Stream::Data), 10);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn mixture_latent_samples_have_the_configured_moments() {
        // 3 components on a circle of radius 2 in 3-D, std 0.3: mean 0; covariance
        // std^2 I + (1/3) sum m m^T, i.e. 0.09 + 2 in the first two coordinates, 0.09 in the
        // third, no correlations (the three means are 120 degrees apart).
        let cfg = LatentConfig {
            prior: Prior::Mixture,
            dim: 3,
            components: 3,
            spread: 2.0,
            std: 0.3,
        };
        let n = 200_000;
        let z = sample_latent(&cfg, &mut stream(9, Stream::Latent), n);
        let mean: Vec<f64> = (0..3)
            .map(|j| z.iter().skip(j).step_by(3).sum::<f64>() / n as f64)
            .collect();
        for m in &mean {
            assert!(m.abs() < 0.02, "{mean:?}");
        }
        let cov = |a: usize, b: usize| {
            z.chunks(3).map(|r| r[a] * r[b]).sum::<f64>() / n as f64 - mean[a] * mean[b]
        };
        assert!((cov(0, 0) - 2.09).abs() < 0.03, "{}", cov(0, 0));
        assert!((cov(1, 1) - 2.09).abs() < 0.03, "{}", cov(1, 1));
        assert!((cov(2, 2) - 0.09).abs() < 0.003, "{}", cov(2, 2));
        assert!(cov(0, 1).abs() < 0.03 && cov(0, 2).abs() < 0.01);
        // Every sample lies near one of the means (the mixture is not a blur).
        let means = latent_means(&cfg);
        for r in z.chunks(3).take(1000) {
            let d = means
                .iter()
                .map(|m| {
                    m.iter()
                        .zip(r)
                        .map(|(a, b)| (a - b).powi(2))
                        .sum::<f64>()
                        .sqrt()
                })
                .fold(f64::INFINITY, f64::min);
            assert!(d < 0.3 * 6.0, "{r:?}");
        }
    }

    #[test]
    fn latent_marginal_cdfs_map_their_samples_to_uniform_numbers() {
        use crate::backend::{host, matrix, CPU};
        use burn::backend::NdArray;
        for prior in [Prior::Normal, Prior::Uniform, Prior::Mixture] {
            let cfg = LatentConfig {
                prior,
                dim: 2,
                components: 5,
                ..Default::default()
            };
            let n = 20_000;
            let z = sample_latent(&cfg, &mut stream(3, Stream::Latent), n);
            for coord in 0..2 {
                let col: Vec<f64> = z.iter().skip(coord).step_by(2).copied().collect();
                let u =
                    host(latent_marginal(&cfg, coord).cdf(matrix::<NdArray<f64>>(col, n, 1, &CPU)));
                // Deciles of u are those of the uniform distribution.
                let mut counts = [0usize; 10];
                for x in &u {
                    counts[((x * 10.0) as usize).min(9)] += 1;
                }
                for c in counts {
                    assert!(
                        (c as f64 / n as f64 - 0.1).abs() < 0.01,
                        "{prior:?} {counts:?}"
                    );
                }
            }
        }
    }
}
