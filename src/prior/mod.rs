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

use crate::activation::Activations;
use crate::data::{latent_marginal, Dataset, LatentMarginal};
use crate::nets::{Net, ParamSpec};
use crate::rng::{stream, Stream};
use crate::spec::{PriorModelConfig, TrialConfig};

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

    /// P(z) for latent rows `z` `[.., rows, latent]` (ranks as in [`Net::forward`]).
    pub fn forward<B: Activations, const D: usize>(
        &self,
        params: &[Tensor<B, D>],
        z: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let last = D - 1;
        match self {
            PriorForm::PcaGaussian { k, .. } => {
                z.narrow(last, 0, *k).matmul(params[1].clone()) + params[0].clone()
            }
            PriorForm::Gmm {
                dim,
                cum_weights,
                selector,
            } => {
                let gauss = |j: usize| {
                    z.clone()
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
                let code = z.narrow(last, 0, *k).matmul(params[1].clone()) + params[0].clone();
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
}

impl FittedPrior {
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
fn fit_rows(data: &Dataset, samples: usize, seed: u64) -> (Vec<f64>, rand_chacha::ChaCha8Rng) {
    let mut rng = stream(seed, Stream::PriorFit);
    let rows = match data.table_rows() {
        Some(rows) => rows.to_vec(),
        None => data.sample(&mut rng, samples),
    };
    (rows, rng)
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
    let key = format!(
        "{}\n{}\n{}\n{}",
        toml::to_string(&cfg.data).unwrap_or_default(),
        toml::to_string(&cfg.prior_model).unwrap_or_default(),
        toml::to_string(&cfg.latent).unwrap_or_default(),
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
        Ok(p) => Ok(Some(p.clone())),
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
            let (rows, _) = fit_rows(data, p.samples, cfg.seed);
            Ok(pca::fit(&rows, dim, p.components))
        }
        PriorModelConfig::Gmm(g) => {
            needs("prior_model (gmm)", dim + usize::from(g.components > 1))?;
            let (rows, mut rng) = fit_rows(data, g.samples, cfg.seed);
            anyhow::ensure!(
                rows.len() / dim >= g.components,
                "prior_model.components: {} components need at least as many data rows, the data has {}",
                g.components,
                rows.len() / dim
            );
            let fit = gmm::fit(&rows, dim, g, &mut rng);
            Ok(fit.into_prior(latent_marginal(&cfg.latent, dim)))
        }
        PriorModelConfig::Autoencoder(a) => {
            let (rows, mut rng) = fit_rows(data, a.samples, cfg.seed);
            Ok(autoencoder::fit(&rows, dim, a, &mut rng))
        }
    }
}
