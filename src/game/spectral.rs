//! Spectral normalisation of the discriminator's weights (Miyato et al. 2018): each weight
//! matrix W enters the discriminator as W / sigma(W), sigma estimated by power iteration,
//! sigma = v^T W u with unit vectors u (right) and v (left) held fixed while gradients are
//! taken. The gradient therefore flows through sigma as d(sigma)/dW = v u^T, as in the paper
//! and in PyTorch's `spectral_norm`. Biases are not normalised.
//!
//! A trial keeps u and v in its state (`spectral/u/I`, `spectral/v/I`, I the tensor's index
//! in phi) and takes one power-iteration step after every training step, so step k normalises
//! with vectors iterated on the weights it starts from (and the probes of step k see the same
//! ones); see `train::Trainer::step`. Weights are stored as `[in, out]` (x W + b).

use burn::tensor::{backend::Backend, Tensor};

use crate::backend::host;
use crate::nets::{Net, ParamSpec};

/// Keeps a normalisation finite at a zero vector.
const NORM_EPS: f64 = 1e-12;

/// The power iteration's vectors as the normaliser uses them: for each normalised tensor of
/// phi, its index and the outer product v u^T (row-major, the weight's shape), so that
/// sigma = <W, v u^T> at any rank.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpectralVectors {
    pub outer: Vec<(usize, Vec<f64>)>,
}

/// Whether a discriminator tensor is a weight matrix (normalised) rather than a bias.
pub fn is_weight(spec: &ParamSpec) -> bool {
    spec.name.ends_with(".w") || spec.name == "psi"
}

/// Indices of the discriminator's weight matrices.
pub fn weights(net: &Net) -> Vec<usize> {
    net.param_specs()
        .iter()
        .enumerate()
        .filter(|(_, s)| is_weight(s))
        .map(|(i, _)| i)
        .collect()
}

impl SpectralVectors {
    /// phi with every normalised weight divided by sigma = <W, v u^T> (per copy for rank 3),
    /// differentiable through sigma wherever phi is tracked.
    pub fn normalised<K: Backend, const D: usize>(
        &self,
        phi: &[Tensor<K, D>],
        specs: &[ParamSpec],
    ) -> Vec<Tensor<K, D>> {
        let mut out = phi.to_vec();
        for (i, m) in &self.outer {
            let w = &phi[*i];
            let s = &specs[*i];
            let mut dims = [1usize; D];
            dims[D - 2] = s.rows;
            dims[D - 1] = s.cols;
            let m =
                crate::backend::matrix_in::<K>(m.clone(), s.rows, s.cols, &w.device(), w.dtype())
                    .reshape(dims);
            let sigma = (w.clone() * m).sum_dim(D - 1).sum_dim(D - 2);
            out[*i] = w.clone() / sigma;
        }
        out
    }
}

/// One power-iteration step on W (`[in, out]`) from u (`[out, 1]`): v = W u / |W u|, then
/// u = W^T v / |W^T v|. Returns (u, v).
pub fn power_step<B: Backend>(w: &Tensor<B, 2>, u: &Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let unit = |x: Tensor<B, 2>| {
        let n = x.clone().square().sum().sqrt().add_scalar(NORM_EPS);
        x / n.unsqueeze::<2>()
    };
    let v = unit(w.clone().matmul(u.clone()));
    let u = unit(w.clone().transpose().matmul(v.clone()));
    (u, v)
}

/// The outer product v u^T of one weight's vectors, on the host.
pub fn outer<B: Backend>(u: &Tensor<B, 2>, v: &Tensor<B, 2>) -> Vec<f64> {
    outer_of(&host(u.clone()), &host(v.clone()))
}

/// v u^T of host vectors, row-major (`v.len()` rows).
pub fn outer_of(u: &[f64], v: &[f64]) -> Vec<f64> {
    v.iter()
        .flat_map(|a| u.iter().map(move |b| a * b))
        .collect()
}

/// The vectors after `iterations` (at least 1) power steps on W from `u0`; enough of them
/// converge to W's top singular pair (a saved trial's probe iterates 200).
pub fn converged<B: Backend>(
    w: &Tensor<B, 2>,
    u0: Tensor<B, 2>,
    iterations: usize,
) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let (mut u, mut v) = power_step(w, &u0);
    for _ in 1..iterations {
        (u, v) = power_step(w, &u);
    }
    (u, v)
}
