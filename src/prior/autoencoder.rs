//! The auto-encoder prior model: an MLP encoder and decoder pre-trained on reconstruction
//! (mean squared error, Adam with betas 0.9 and 0.999) for `steps` steps, in f64 on the CPU
//! whatever the trial's backend, so the fit is the same for every backend. A Gaussian is then
//! fitted to the codes of the training rows, and P decodes it:
//! P(z) = dec(code_mean + z[..k] code_a), code_a^T code_a the codes' covariance.
//!
//! A tenth of the fit rows (at least one) is held out. Fit quality: `reconstruction_mse` on
//! the held-out rows, `train_mse` on the others, `initial_mse` before training; the trace
//! holds the training loss every 100 steps.

use burn::tensor::Tensor;
use nalgebra::DMatrix;
use rand::seq::SliceRandom;
use rand::Rng;

use super::pca::mean_and_covariance;
use super::{FitReport, FittedPrior, PriorForm};
use crate::backend::{host, matrix, CpuF64, CPU};
use crate::game::field::Inner;
use crate::nets::Net;
use crate::spec::{AdamConfig, AutoencoderConfig, OptimizerConfig};
use crate::train::Optimizer;

type Plain = Inner<CpuF64>;

fn mlp(input: usize, cfg: &AutoencoderConfig, output: usize) -> Net {
    let mut dims = vec![input];
    dims.extend(std::iter::repeat_n(cfg.width, cfg.depth));
    dims.push(output);
    Net::Mlp {
        dims,
        activation: cfg.activation,
    }
}

/// Mean squared reconstruction error of row-major `rows`.
fn mse(enc: &Net, dec: &Net, params: &[Tensor<Plain, 2>], rows: &[f64], dim: usize) -> f64 {
    let ne = enc.param_specs().len();
    let x = matrix::<Plain>(rows.to_vec(), rows.len() / dim, dim, &CPU);
    let code = enc.forward(&params[..ne], x.clone());
    host((dec.forward(&params[ne..], code) - x).square().mean())[0]
}

/// Fits the auto-encoder to row-major `rows` of `dim` columns.
pub fn fit<R: Rng>(rows: &[f64], dim: usize, cfg: &AutoencoderConfig, rng: &mut R) -> FittedPrior {
    let n = rows.len() / dim;
    let k = cfg.code_dim;
    // A shuffled split, so a table's row order does not choose the held-out rows.
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(rng);
    let held = (n / 10).clamp(1, n - 1);
    let pick = |idx: &[usize]| -> Vec<f64> {
        idx.iter()
            .flat_map(|&i| rows[i * dim..(i + 1) * dim].iter().copied())
            .collect()
    };
    let (train_idx, held_idx) = order.split_at(n - held);
    let (train, held_out) = (pick(train_idx), pick(held_idx));
    let n_train = train_idx.len();

    let enc = mlp(dim, cfg, k);
    let dec = mlp(k, cfg, dim);
    let ne = enc.param_specs().len();
    let mut values = enc.init(rng);
    values.extend(dec.init(rng));
    let specs: Vec<_> = enc
        .param_specs()
        .into_iter()
        .chain(dec.param_specs())
        .collect();
    let mut params: Vec<Tensor<Plain, 2>> = specs
        .iter()
        .zip(values)
        .map(|(s, v)| matrix::<Plain>(v, s.rows, s.cols, &CPU))
        .collect();
    let adam = OptimizerConfig::Adam(AdamConfig {
        lr: cfg.lr,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    });
    let mut opt = Optimizer::<Plain>::new(adam, params.len());
    let initial = mse(&enc, &dec, &params, &train, dim);
    let mut trace = Vec::new();
    let batch = cfg.batch.min(n_train);
    for step in 0..cfg.steps {
        let mut xb = Vec::with_capacity(batch * dim);
        for _ in 0..batch {
            let i = rng.random_range(0..n_train);
            xb.extend_from_slice(&train[i * dim..(i + 1) * dim]);
        }
        let x = Tensor::<CpuF64, 2>::from_inner(matrix::<Plain>(xb, batch, dim, &CPU));
        let leaves: Vec<Tensor<CpuF64, 2>> = crate::train::lift(&params);
        let code = enc.forward(&leaves[..ne], x.clone());
        let loss = (dec.forward(&leaves[ne..], code) - x).square().mean();
        if step % 100 == 0 {
            trace.push(host(loss.clone().inner())[0]);
        }
        let grads = loss.backward();
        opt.step(&mut params, crate::game::field::grads_of(&leaves, &grads));
    }

    // The Gaussian of the training rows' codes (a tiny ridge keeps it positive definite).
    let x = matrix::<Plain>(train.clone(), n_train, dim, &CPU);
    let codes = host(enc.forward(&params[..ne], x));
    let (code_mean, cov) = mean_and_covariance(&codes, k);
    let chol = nalgebra::Cholesky::new(&cov + DMatrix::identity(k, k) * 1e-9)
        .map(|c| c.l())
        .unwrap_or_else(|| DMatrix::identity(k, k) * 1e-4);
    let code_a: Vec<f64> = (0..k * k).map(|i| chol[(i % k, i / k)]).collect();

    let mut report = FitReport {
        kind: "autoencoder".into(),
        rows: n,
        trace,
        ..Default::default()
    };
    report.quality.insert("initial_mse".into(), initial);
    report
        .quality
        .insert("train_mse".into(), mse(&enc, &dec, &params, &train, dim));
    report.quality.insert(
        "reconstruction_mse".into(),
        mse(&enc, &dec, &params, &held_out, dim),
    );
    let mut out = vec![code_mean.iter().copied().collect(), code_a];
    out.extend(params[ne..].iter().map(|p| host(p.clone())));
    FittedPrior {
        form: PriorForm::Autoencoder { k, decoder: dec },
        values: out,
        report,
        standardise: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};
    use crate::spec::Activation;

    #[test]
    fn learns_to_reconstruct_a_line_and_decodes_its_code_gaussian() {
        // Rows on the line t (1, 2) / sqrt(5), t uniform in [-1, 1]: one code suffices.
        let mut rng = stream(2, Stream::Data);
        let rows: Vec<f64> = (0..2000)
            .flat_map(|_| {
                let t: f64 = rng.random_range(-1.0..1.0);
                [t / 5f64.sqrt(), 2.0 * t / 5f64.sqrt()]
            })
            .collect();
        let cfg = AutoencoderConfig {
            code_dim: 1,
            depth: 1,
            width: 16,
            activation: Activation::Tanh,
            steps: 1500,
            batch: 64,
            lr: 1e-2,
            samples: 2000,
        };
        let p = fit(&rows, 2, &cfg, &mut stream(2, Stream::PriorFit));
        let q = &p.report.quality;
        assert!(q["reconstruction_mse"] < 0.02 * q["initial_mse"], "{q:?}");
        // P(z) lies near the line: its residual off the line is small.
        let z = matrix::<Plain>(vec![-1.0, -0.3, 0.0, 0.4, 1.2], 5, 1, &CPU);
        let params: Vec<Tensor<Plain, 2>> = p
            .form
            .param_specs()
            .iter()
            .zip(&p.values)
            .map(|(s, v)| matrix::<Plain>(v.clone(), s.rows, s.cols, &CPU))
            .collect();
        let x = host(p.apply(&params, z));
        for r in x.chunks(2) {
            let off = (2.0 * r[0] - r[1]).abs() / 5f64.sqrt();
            assert!(off < 0.1, "{x:?}");
        }
    }
}
