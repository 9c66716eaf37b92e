//! Penalties on the discriminator's input gradient: WGAN-GP, R1, R2.
//!
//! They need grad_x D(x; phi) as a function of phi that can itself be differentiated. The
//! training backend B is `Autodiff<X>`; here one more `Autodiff` is nested on top: the input
//! gradient is taken by the outer level's backward pass, whose arithmetic runs on B and is
//! therefore recorded in B's graph. The result is exact (no finite differences).
//!
//! Inputs are rows of rank 2, or per-copy batches of rank 3 (see `Net::forward`); the input
//! gradient of the summed score is then each copy's own, because copies do not interact.

use burn::backend::Autodiff;
use burn::tensor::Tensor;

use crate::backend::GanBackend;

use super::loss::row_mean;
use crate::nets::Net;

/// Keeps the norm differentiable where the input gradient vanishes (e.g. psi = 0 in the
/// Dirac-GAN): sqrt(|g|^2 + NORM_EPS). Its effect on a norm near 1 is below 1e-12.
pub const NORM_EPS: f64 = 1e-12;

/// grad_x sum_i D(x_i; phi), one row per input row, differentiable with respect to `phi`,
/// and to `x` where `x_tracked` (then x keeps its graph at B's level: the fake rows of SGA's
/// grad_theta L_D). Otherwise x is detached first, as it always was: the same numbers to the
/// last bit (a fresh node changes the order in which B's backward pass sums).
pub fn input_gradient<B: GanBackend, const D: usize>(
    net: &Net,
    phi: &[Tensor<B, D>],
    x: Tensor<B, D>,
    x_tracked: bool,
) -> Tensor<B, D> {
    let x = if x_tracked { x } else { x.detach() };
    let phi_outer: Vec<Tensor<Autodiff<B>, D>> =
        phi.iter().map(|p| Tensor::from_inner(p.clone())).collect();
    let x_outer = Tensor::<Autodiff<B>, D>::from_inner(x).require_grad();
    let score = net.forward(&phi_outer, x_outer.clone()).sum();
    let grads = score.backward();
    // x always reaches D's output; a zero gradient is the right answer if it ever does not.
    x_outer
        .grad(&grads)
        .unwrap_or_else(|| x_outer.inner().zeros_like())
}

/// Squared Euclidean norm of every row, as an `n x 1` column (per copy for rank 3).
pub fn row_sq_norm<B: burn::tensor::backend::Backend, const D: usize>(
    g: Tensor<B, D>,
) -> Tensor<B, D> {
    g.square().sum_dim(D - 1)
}

/// WGAN-GP: weight * E (|grad D(x_hat)| - 1)^2 at x_hat = eps real + (1 - eps) fake.
pub fn gradient_penalty<B: GanBackend, const D: usize>(
    net: &Net,
    phi: &[Tensor<B, D>],
    real: Tensor<B, D>,
    fake: Tensor<B, D>,
    eps: Tensor<B, D>,
    weight: f64,
    x_tracked: bool,
) -> Tensor<B, 1> {
    let x_hat = real * eps.clone() + fake * (eps.neg() + 1.0);
    let g = input_gradient(net, phi, x_hat, x_tracked);
    let norm = (row_sq_norm(g) + NORM_EPS).sqrt();
    row_mean((norm - 1.0).square()).mul_scalar(weight)
}

/// R1 (on real rows) or R2 (on fake rows): (gamma / 2) E |grad D(x)|^2.
pub fn squared_gradient_penalty<B: GanBackend, const D: usize>(
    net: &Net,
    phi: &[Tensor<B, D>],
    x: Tensor<B, D>,
    gamma: f64,
    x_tracked: bool,
) -> Tensor<B, 1> {
    row_mean(row_sq_norm(input_gradient(net, phi, x, x_tracked))).mul_scalar(gamma / 2.0)
}
