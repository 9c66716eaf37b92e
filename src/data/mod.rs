//! Data distributions. Samples are drawn on the host from the trial's seeded stream, so the
//! same seed gives the same batches on every backend.

use std::f64::consts::PI;

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::spec::{DataConfig, RegressionFn};

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
        };
        Ok(Dataset { kind, dim })
    }

    /// Dimension of a sample.
    pub fn dim(&self) -> usize {
        self.dim
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
        }
        out
    }
}

/// Latent samples, row-major `n x dim`.
pub fn sample_latent<R: Rng>(
    prior: crate::spec::Prior,
    rng: &mut R,
    n: usize,
    dim: usize,
) -> Vec<f64> {
    match prior {
        crate::spec::Prior::Normal => (0..n * dim).map(|_| StandardNormal.sample(rng)).collect(),
        crate::spec::Prior::Uniform => (0..n * dim).map(|_| rng.random_range(-1.0..1.0)).collect(),
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
}
