//! Adversarial losses. D outputs a score t (a logit for the probabilistic losses); both
//! players MINIMISE their own loss (SPEC section 2). With softplus(t) = log(1 + e^t):
//!
//! | loss            | L_D                                            | L_G                    |
//! |-----------------|------------------------------------------------|------------------------|
//! | minimax         | E softplus(-D(x)) + E softplus(D(G(z)))        | -E softplus(D(G(z)))   |
//! | non_saturating  | same                                           | E softplus(-D(G(z)))   |
//! | wgan_clip/_gp   | E D(G(z)) - E D(x)                             | -E D(G(z))             |
//! | least_squares   | E (D(x) - 1)^2 / 2 + E D(G(z))^2 / 2           | E (D(G(z)) - 1)^2 / 2  |
//! | hinge           | E relu(1 - D(x)) + E relu(1 + D(G(z)))         | -E D(G(z))             |

use burn::tensor::{activation, backend::Backend, Tensor};

use crate::spec::Loss;

/// softplus(t) = log(1 + e^t), computed stably as -log_sigmoid(-t).
pub fn softplus<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, D> {
    activation::log_sigmoid(t.neg()).neg()
}

/// The expectation over rows: the mean over the row dimension (the second last), summed over
/// any leading dimension. For one player (rank 2) it is the plain mean; for stacked parameter
/// copies (rank 3) it is the sum of the copies' losses, whose gradient for each copy is that
/// copy's own gradient.
pub fn row_mean<B: Backend, const D: usize>(t: Tensor<B, D>) -> Tensor<B, 1> {
    t.mean_dim(D - 2).sum()
}

/// The discriminator's loss (without regularisers) from its outputs on real and fake rows.
pub fn discriminator_loss<B: Backend, const D: usize>(
    loss: Loss,
    d_real: Tensor<B, D>,
    d_fake: Tensor<B, D>,
) -> Tensor<B, 1> {
    match loss {
        Loss::Minimax | Loss::NonSaturating => {
            row_mean(softplus(d_real.neg())) + row_mean(softplus(d_fake))
        }
        Loss::WganClip | Loss::WganGp => row_mean(d_fake) - row_mean(d_real),
        Loss::LeastSquares => {
            (row_mean((d_real - 1.0).square()) + row_mean(d_fake.square())).mul_scalar(0.5)
        }
        Loss::Hinge => {
            row_mean(activation::relu(d_real.neg() + 1.0))
                + row_mean(activation::relu(d_fake + 1.0))
        }
    }
}

/// The generator's loss from the discriminator's outputs on fake rows.
pub fn generator_loss<B: Backend, const D: usize>(
    loss: Loss,
    d_fake: Tensor<B, D>,
) -> Tensor<B, 1> {
    match loss {
        Loss::Minimax => row_mean(softplus(d_fake)).neg(),
        Loss::NonSaturating => row_mean(softplus(d_fake.neg())),
        Loss::WganClip | Loss::WganGp | Loss::Hinge => row_mean(d_fake).neg(),
        Loss::LeastSquares => row_mean((d_fake - 1.0).square()).mul_scalar(0.5),
    }
}
