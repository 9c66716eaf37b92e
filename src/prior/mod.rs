//! Prior models (SPEC section 3.4): a model P fitted to the training data before adversarial
//! training, whose output the skip-GAN carries around the generator, x = P(z) + alpha G(z).
//!
//! A fit gives a [`FittedPrior`]: the map's form ([`PriorForm`], which knows its parameter
//! shapes and its forward pass on any backend, like [`Net`]), the fitted values, and what the
//! fit measured. Frozen, the values are constants of the generator's forward pass; fine-tuned,
//! they are generator parameters named `prior.*`, so the game field and its spectrum include
//! them.

pub mod autoencoder;
pub mod gmm;
pub mod pca;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use burn::tensor::Tensor;
use serde::{Deserialize, Serialize};

use crate::data::{latent_marginal, latent_moments, Dataset, LatentMarginal};
use crate::net_ops::NetOps;
use crate::nets::{Net, ParamSpec};
use crate::rng::{stream, Stream};
use crate::spec::{LatentConfig, PriorModelConfig, TrialConfig};

/// The shape of a prior model's map from latent rows to data rows.
#[derive(Debug, Clone, PartialEq)]
pub enum PriorForm {
    /// P(z) = mean + z[..k] w, w `k x dim`.
    PcaGaussian { k: usize, dim: usize },
    /// P(z) = mean_c + z[..dim] a_c, the component c picked by latent coordinate `dim`: its
    /// marginal CDF u(z_dim) is uniform on [0, 1), and c is the j with
    /// `cum_weights[j] <= u < cum_weights[j + 1]`.
    Gmm {
        dim: usize,
        /// Cumulative weights starting at 0, one per component (the last upper bound is 1).
        cum_weights: Vec<f64>,
        selector: LatentMarginal,
    },
    /// P(z) = dec(code_mean + z[..k] code_a).
    Autoencoder { k: usize, decoder: Net },
}

impl PriorForm {
    /// Parameter tensors, in the order `forward` takes them; names start with `prior.`.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let spec = |name: String, rows, cols| ParamSpec { name, rows, cols };
        match self {
            PriorForm::PcaGaussian { k, dim } => vec![
                spec("prior.mean".into(), 1, *dim),
                spec("prior.w".into(), *k, *dim),
            ],
            PriorForm::Gmm {
                dim, cum_weights, ..
            } => (0..cum_weights.len())
                .flat_map(|j| {
                    [
                        spec(format!("prior.mean{j}"), 1, *dim),
                        spec(format!("prior.a{j}"), *dim, *dim),
                    ]
                })
                .collect(),
            PriorForm::Autoencoder { k, decoder } => {
                let mut v = vec![
                    spec("prior.code_mean".into(), 1, *k),
                    spec("prior.code_a".into(), *k, *k),
                ];
                v.extend(decoder.param_specs().into_iter().map(|mut s| {
                    s.name = format!("prior.dec.{}", s.name);
                    s
                }));
                v
            }
        }
    }

    /// Dimension of the output rows.
    pub fn out_dim(&self) -> usize {
        match self {
            PriorForm::PcaGaussian { dim, .. } | PriorForm::Gmm { dim, .. } => *dim,
            PriorForm::Autoencoder { decoder, .. } => decoder.out_dim(),
        }
    }

    /// P for latent rows `z` `[.., rows, latent]` (ranks as in [`Net::forward`]), given also
    /// standardised (`z_std`, see [`FittedPrior::standardise`]): the maps read `z_std`, the
    /// mixture's component picker the raw `z` through the latent prior's own CDF.
    pub fn forward<B: NetOps, const D: usize>(
        &self,
        params: &[Tensor<B, D>],
        z: Tensor<B, D>,
        z_std: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let last = D - 1;
        match self {
            PriorForm::PcaGaussian { k, .. } => {
                z_std.narrow(last, 0, *k).matmul(params[1].clone()) + params[0].clone()
            }
            PriorForm::Gmm {
                dim,
                cum_weights,
                selector,
            } => {
                let gauss = |j: usize| {
                    z_std
                        .clone()
                        .narrow(last, 0, *dim)
                        .matmul(params[2 * j + 1].clone())
                        + params[2 * j].clone()
                };
                if cum_weights.len() == 1 {
                    return gauss(0);
                }
                let u = selector.cdf(z.clone().narrow(last, *dim, 1));
                // at_least[j] = 1 where u >= cum_weights[j]; component j's rows are
                // at_least[j] - at_least[j + 1] (the first has at_least = 1 everywhere).
                let at_least = |j: usize| u.clone().greater_equal_elem(cum_weights[j]).float();
                let mut out: Option<Tensor<B, D>> = None;
                for j in 0..cum_weights.len() {
                    let mut mask = if j == 0 {
                        at_least(1).neg().add_scalar(1.0)
                    } else {
                        at_least(j)
                    };
                    if j > 0 && j + 1 < cum_weights.len() {
                        mask = mask - at_least(j + 1);
                    }
                    let term = gauss(j) * mask;
                    out = Some(match out {
                        Some(o) => o + term,
                        None => term,
                    });
                }
                out.expect("at least one component")
            }
            PriorForm::Autoencoder { k, decoder } => {
                let code = z_std.narrow(last, 0, *k).matmul(params[1].clone()) + params[0].clone();
                decoder.forward(&params[2..], code)
            }
        }
    }
}

/// One fitted parameter tensor, as `prior_model.toml` stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedParam {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
    pub values: Vec<f64>,
}

/// What a fit measured (written to `TRIAL/prior_model.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct FitReport {
    /// `pca_gaussian`, `gmm` or `autoencoder`.
    pub kind: String,
    /// Data rows the model was fitted on.
    pub rows: usize,
    /// Fit quality, by name (see each model's module).
    pub quality: BTreeMap<String, f64>,
    /// Per-iteration values where the fit iterates (EM's mean log-likelihood; the
    /// auto-encoder's training loss every 100 steps).
    pub trace: Vec<f64>,
}

/// A prior model fitted to a trial's data.
#[derive(Debug, Clone, PartialEq)]
pub struct FittedPrior {
    pub form: PriorForm,
    /// One vector per `form.param_specs()`, row-major.
    pub values: Vec<Vec<f64>>,
    pub report: FitReport,
    /// (mean, std) of each latent coordinate under the latent prior, when it is not the
    /// standard normal: P reads z standardised by them, so the fitted model's mean and
    /// covariance come out under every latent prior (its shape follows the latent's).
    pub standardise: Option<Vec<(f64, f64)>>,
}

impl FittedPrior {
    /// P(z) with P's parameters `params` (the fitted values as constants, or the generator's
    /// `prior.*` tensors when fine-tuned).
    pub fn apply<B: NetOps, const D: usize>(
        &self,
        params: &[Tensor<B, D>],
        z: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let z_std = match &self.standardise {
            None => z.clone(),
            Some(moments) => {
                let zd = moments.len();
                let mut shape = [1usize; D];
                shape[D - 1] = zd;
                let dev = z.device();
                let dtype = z.dtype();
                let row = |v: Vec<f64>| {
                    crate::backend::matrix_in::<B>(v, 1, zd, &dev, dtype).reshape(shape)
                };
                let mean = row(moments.iter().map(|m| m.0).collect());
                let inv_std = row(moments.iter().map(|m| 1.0 / m.1).collect());
                (z.clone() - mean) * inv_std
            }
        };
        self.form.forward(params, z, z_std)
    }

    /// The model for a trial's latent prior: the standardisation of z and, for the mixture,
    /// the component picker's CDF (a fit itself does not depend on the latent prior).
    fn for_latent(mut self, latent: &LatentConfig, x_dim: usize) -> FittedPrior {
        self.standardise = latent_moments(latent);
        if let PriorForm::Gmm { selector, .. } = &mut self.form {
            *selector = latent_marginal(latent, x_dim);
        }
        self
    }

    /// The contents of `TRIAL/prior_model.toml`: the fit's report and the fitted values.
    pub fn to_toml(&self) -> String {
        #[derive(Serialize)]
        struct File<'a> {
            fit: &'a FitReport,
            params: Vec<SavedParam>,
        }
        let params = self
            .form
            .param_specs()
            .into_iter()
            .zip(&self.values)
            .map(|(s, v)| SavedParam {
                name: s.name,
                rows: s.rows,
                cols: s.cols,
                values: v.clone(),
            })
            .collect();
        let file = File {
            fit: &self.report,
            params,
        };
        format!(
            "# The prior model P of this trial, fitted before adversarial training (see the\n\
             # README, \"The skip-GAN\"): what the fit measured, then P's fitted values.\n{}",
            toml::to_string(&file).expect("a fit report serialises")
        )
    }
}

/// The rows a prior model is fitted on: every row of a CSV table, otherwise `samples` rows
/// drawn from the trial's `prior_fit` stream (so fitting never shifts training's streams).
fn fit_rows(
    data: &Dataset,
    samples: usize,
    seed: u64,
) -> anyhow::Result<(Vec<f64>, rand_chacha::ChaCha8Rng)> {
    let mut rng = stream(seed, Stream::PriorFit);
    let rows = match data.table_rows() {
        Some(rows) => rows.to_vec(),
        None => data.sample(&mut rng, samples),
    };
    let n = rows.len() / data.dim();
    anyhow::ensure!(
        n >= 2,
        "a prior model is fitted to at least 2 data rows, the data has {n}"
    );
    // Squares of larger values overflow the covariances.
    if let Some(x) = rows.iter().find(|x| x.abs() > 1e100) {
        anyhow::bail!(
            "a prior model needs data values below 1e100 in magnitude, the data holds {x:e}"
        );
    }
    Ok((rows, rng))
}

/// Fits the prior model a configuration names to `data`, or `None` for `prior_model = none`.
/// A fit depends on the data, the model's settings and the seed only, and is made once per
/// process for each such triple: the trials of a study that share them share the fit.
pub fn fit(cfg: &TrialConfig, data: &Dataset) -> anyhow::Result<Option<Arc<FittedPrior>>> {
    type Slot = Arc<OnceLock<Result<Arc<FittedPrior>, String>>>;
    static FITS: OnceLock<Mutex<HashMap<String, Slot>>> = OnceLock::new();
    if cfg.prior_model == PriorModelConfig::None {
        return Ok(None);
    }
    // The latent prior is not part of the key: it changes how P reads z, not the fit.
    let key = format!(
        "{}\n{}\n{}",
        toml::to_string(&cfg.data).unwrap_or_default(),
        toml::to_string(&cfg.prior_model).unwrap_or_default(),
        cfg.seed
    );
    let slot = {
        let mut fits = FITS
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        fits.entry(key).or_default().clone()
    };
    // Trials that need the same fit wait for the first one to make it.
    let fitted = slot.get_or_init(|| {
        fit_now(cfg, data)
            .map(Arc::new)
            .map_err(|e| format!("{e:#}"))
    });
    match fitted {
        Ok(p) => Ok(Some(Arc::new(
            (**p).clone().for_latent(&cfg.latent, data.dim()),
        ))),
        Err(e) => Err(anyhow::anyhow!("{e}")),
    }
}

fn fit_now(cfg: &TrialConfig, data: &Dataset) -> anyhow::Result<FittedPrior> {
    let dim = data.dim();
    let z = cfg.latent.dim;
    let needs = |what: &str, k: usize| -> anyhow::Result<()> {
        anyhow::ensure!(
            k <= z,
            "{what} needs latent.dim >= {k} for data of {dim} columns, but latent.dim is {z}"
        );
        Ok(())
    };
    match &cfg.prior_model {
        PriorModelConfig::None => unreachable!("no fit for `none`"),
        PriorModelConfig::PcaGaussian(p) => {
            anyhow::ensure!(
                p.components <= dim,
                "prior_model.components: a PCA-Gaussian of {} components needs data of at least that many columns, the data has {dim}",
                p.components
            );
            let (rows, _) = fit_rows(data, p.samples, cfg.seed)?;
            Ok(pca::fit(&rows, dim, p.components))
        }
        PriorModelConfig::Gmm(g) => {
            needs("prior_model (gmm)", dim + usize::from(g.components > 1))?;
            let (rows, mut rng) = fit_rows(data, g.samples, cfg.seed)?;
            anyhow::ensure!(
                rows.len() / dim >= g.components,
                "prior_model.components: {} components need at least as many data rows, the data has {}",
                g.components,
                rows.len() / dim
            );
            let fit = gmm::fit(&rows, dim, g, &mut rng);
            // The component picker is set per trial (`for_latent`).
            Ok(fit.into_prior(LatentMarginal::Uniform))
        }
        PriorModelConfig::Autoencoder(a) => {
            let (rows, mut rng) = fit_rows(data, a.samples, cfg.seed)?;
            Ok(autoencoder::fit(&rows, dim, a, &mut rng))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{host, matrix, CPU};
    use crate::data::sample_latent;
    use crate::spec::Prior;
    use burn::backend::NdArray;

    #[test]
    fn the_pca_gaussian_keeps_its_moments_under_every_latent_prior() {
        // A fitted 2-D Gaussian (mean (1, -1), covariance w^T w) read through each prior.
        let fitted = FittedPrior {
            form: PriorForm::PcaGaussian { k: 2, dim: 2 },
            values: vec![vec![1.0, -1.0], vec![2.0, 0.5, 0.0, 0.7]],
            report: FitReport::default(),
            standardise: None,
        };
        let want_cov = [[4.0, 1.0], [1.0, 0.25 + 0.49]];
        for prior in [Prior::Normal, Prior::Uniform, Prior::Mixture] {
            let latent = LatentConfig {
                prior,
                dim: 2,
                components: 3,
                spread: 2.0,
                std: 0.4,
            };
            let p = fitted.clone().for_latent(&latent, 2);
            let n = 100_000;
            let z = sample_latent(&latent, &mut stream(5, Stream::Latent), n);
            type B = NdArray<f64>;
            let params: Vec<Tensor<B, 2>> = p
                .form
                .param_specs()
                .iter()
                .zip(&p.values)
                .map(|(s, v)| matrix::<B>(v.clone(), s.rows, s.cols, &CPU))
                .collect();
            let x = host(p.apply(&params, matrix::<B>(z, n, 2, &CPU)));
            let mean: Vec<f64> = (0..2)
                .map(|j| x.iter().skip(j).step_by(2).sum::<f64>() / n as f64)
                .collect();
            assert!(
                (mean[0] - 1.0).abs() < 0.03 && (mean[1] + 1.0).abs() < 0.03,
                "{prior:?} {mean:?}"
            );
            for a in 0..2 {
                for b in 0..2 {
                    let c = x
                        .chunks(2)
                        .map(|r| (r[a] - mean[a]) * (r[b] - mean[b]))
                        .sum::<f64>()
                        / n as f64;
                    assert!(
                        (c - want_cov[a][b]).abs() < 0.05 * want_cov[0][0],
                        "{prior:?}: cov[{a}][{b}] = {c}, want {}",
                        want_cov[a][b]
                    );
                }
            }
        }
    }
}
