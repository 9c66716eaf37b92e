//! Penalties on the discriminator's input gradient: WGAN-GP, R1, R2.
//!
//! They need grad_x D(x; phi) as a function of phi that can itself be differentiated. The
//! training backend B is `Autodiff<X>`; here one more `Autodiff` is nested on top: the input
//! gradient is taken by the outer level's backward pass, whose arithmetic runs on B and is
//! therefore recorded in B's graph. The result is exact (no finite differences).

use burn::backend::Autodiff;
use burn::tensor::{backend::AutodiffBackend, Tensor};

use crate::nets::Net;

/// Keeps the norm differentiable where the input gradient vanishes (e.g. psi = 0 in the
/// Dirac-GAN): sqrt(|g|^2 + NORM_EPS). Its effect on a norm near 1 is below 1e-12.
pub const NORM_EPS: f64 = 1e-12;

/// grad_x sum_i D(x_i; phi), one row per input row, differentiable with respect to `phi`.
pub fn input_gradient<B: AutodiffBackend>(
    net: &Net,
    phi: &[Tensor<B, 2>],
    x: Tensor<B, 2>,
) -> Tensor<B, 2> {
    let phi_outer: Vec<Tensor<Autodiff<B>, 2>> =
        phi.iter().map(|p| Tensor::from_inner(p.clone())).collect();
    let x_outer = Tensor::<Autodiff<B>, 2>::from_inner(x.detach()).require_grad();
    let score = net.forward(&phi_outer, x_outer.clone()).sum();
    let grads = score.backward();
    // x always reaches D's output; a zero gradient is the right answer if it ever does not.
    x_outer
        .grad(&grads)
        .unwrap_or_else(|| x_outer.inner().zeros_like())
}

/// Squared Euclidean norm of every row, as an `n x 1` column.
pub fn row_sq_norm<B: burn::tensor::backend::Backend>(g: Tensor<B, 2>) -> Tensor<B, 2> {
    g.square().sum_dim(1)
}

/// WGAN-GP: weight * E (|grad D(x_hat)| - 1)^2 at x_hat = eps real + (1 - eps) fake.
pub fn gradient_penalty<B: AutodiffBackend>(
    net: &Net,
    phi: &[Tensor<B, 2>],
    real: Tensor<B, 2>,
    fake: Tensor<B, 2>,
    eps: Tensor<B, 2>,
    weight: f64,
) -> Tensor<B, 1> {
    let x_hat = real * eps.clone() + fake * (eps.neg() + 1.0);
    let g = input_gradient(net, phi, x_hat);
    let norm = (row_sq_norm(g) + NORM_EPS).sqrt();
    (norm - 1.0).square().mean().mul_scalar(weight)
}

/// R1 (on real rows) or R2 (on fake rows): (gamma / 2) E |grad D(x)|^2.
pub fn squared_gradient_penalty<B: AutodiffBackend>(
    net: &Net,
    phi: &[Tensor<B, 2>],
    x: Tensor<B, 2>,
    gamma: f64,
) -> Tensor<B, 1> {
    row_sq_norm(input_gradient(net, phi, x))
        .mean()
        .mul_scalar(gamma / 2.0)
}
