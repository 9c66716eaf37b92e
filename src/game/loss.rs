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
pub fn softplus<B: Backend>(t: Tensor<B, 2>) -> Tensor<B, 2> {
    activation::log_sigmoid(t.neg()).neg()
}

/// The discriminator's loss (without regularisers) from its outputs on real and fake rows.
pub fn discriminator_loss<B: Backend>(
    loss: Loss,
    d_real: Tensor<B, 2>,
    d_fake: Tensor<B, 2>,
) -> Tensor<B, 1> {
    match loss {
        Loss::Minimax | Loss::NonSaturating => {
            softplus(d_real.neg()).mean() + softplus(d_fake).mean()
        }
        Loss::WganClip | Loss::WganGp => d_fake.mean() - d_real.mean(),
        Loss::LeastSquares => {
            ((d_real - 1.0).square().mean() + d_fake.square().mean()).mul_scalar(0.5)
        }
        Loss::Hinge => {
            activation::relu(d_real.neg() + 1.0).mean() + activation::relu(d_fake + 1.0).mean()
        }
    }
}

/// The generator's loss from the discriminator's outputs on fake rows.
pub fn generator_loss<B: Backend>(loss: Loss, d_fake: Tensor<B, 2>) -> Tensor<B, 1> {
    match loss {
        Loss::Minimax => softplus(d_fake).mean().neg(),
        Loss::NonSaturating => softplus(d_fake.neg()).mean(),
        Loss::WganClip | Loss::WganGp | Loss::Hinge => d_fake.mean().neg(),
        Loss::LeastSquares => (d_fake - 1.0).square().mean().mul_scalar(0.5),
    }
}
