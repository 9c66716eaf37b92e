//! The game's vector field v = (grad_theta L_G, grad_phi L_D), one player's part at a time.
//!
//! Training and the probes take v from here and nowhere else. A part is a gradient taken by
//! backend `B`'s autodiff; everything that part does not differentiate (the other player, the
//! data, the latent rows) comes at `B`'s inner level. The caller chooses:
//! - the leaves to differentiate: the parameter tensors themselves in training; in the probes,
//!   one flat tensor per player cut into its tensors (so v comes out flat);
//! - the level: training runs on `Autodiff<X>`; a probe runs one level higher, so the inner
//!   level records the arithmetic of v and can differentiate it again (J^T w, exactly);
//! - the rank: 2 for one point, 3 for stacked parameter copies (see `Net::forward`).

use burn::tensor::{backend::AutodiffBackend, Tensor};

use super::Game;
use crate::backend::GanBackend;

/// The plain backend under an autodiff backend.
pub type Inner<B> = <B as AutodiffBackend>::InnerBackend;

/// grad_phi L_D with what was measured on the way, at `B`'s inner level.
pub struct DiscriminatorPart<B: AutodiffBackend, const K: usize> {
    /// The gradient for each leaf (zeros where L_D does not depend on it).
    pub grads: Vec<Tensor<Inner<B>, K>>,
    /// L_D, penalties included.
    pub loss: Tensor<Inner<B>, 1>,
    /// Mean D output on the real rows and on the fake rows.
    pub d_real: Tensor<Inner<B>, 1>,
    pub d_fake: Tensor<Inner<B>, 1>,
}

/// grad_theta L_G with L_G, at `B`'s inner level.
pub struct GeneratorPart<B: AutodiffBackend, const K: usize> {
    pub grads: Vec<Tensor<Inner<B>, K>>,
    pub loss: Tensor<Inner<B>, 1>,
}

/// The gradient of one backward pass for each leaf, zeros where it has none.
pub(crate) fn grads_of<B: AutodiffBackend, const K: usize>(
    leaves: &[Tensor<B, K>],
    grads: &B::Gradients,
) -> Vec<Tensor<Inner<B>, K>> {
    leaves
        .iter()
        .map(|p| {
            p.grad(grads)
                .unwrap_or_else(|| p.clone().inner().zeros_like())
        })
        .collect()
}

impl Game {
    /// grad_phi L_D at (theta, phi): the fake rows G(theta; z) are constants at this level (a
    /// probe one level up still sees them depend on theta). `phi` are the discriminator's
    /// tensors as functions of `phi_leaves` (tracked by `B`); `theta`, `real`, `z` and the
    /// WGAN-GP weights `eps` are inner tensors.
    #[allow(clippy::too_many_arguments)]
    pub fn discriminator_part<B: GanBackend, const K: usize, const D: usize>(
        &self,
        theta: &[Tensor<Inner<B>, D>],
        phi_leaves: &[Tensor<B, K>],
        phi: &[Tensor<B, D>],
        real: Tensor<Inner<B>, D>,
        z: Tensor<Inner<B>, D>,
        eps: Option<Tensor<Inner<B>, D>>,
    ) -> DiscriminatorPart<B, K> {
        let fake = Tensor::from_inner(self.fake(theta, z));
        let d = self.discriminator_loss(
            phi,
            Tensor::from_inner(real),
            fake,
            eps.map(Tensor::from_inner),
        );
        let grads = grads_of(phi_leaves, &d.loss.backward());
        DiscriminatorPart {
            grads,
            loss: d.loss.inner(),
            d_real: d.d_real.inner(),
            d_fake: d.d_fake.inner(),
        }
    }

    /// grad_theta L_G at (theta, phi): `theta` are the generator's tensors as functions of
    /// `theta_leaves` (tracked by `B`); `phi` and `z` are inner tensors.
    pub fn generator_part<B: GanBackend, const K: usize, const D: usize>(
        &self,
        theta_leaves: &[Tensor<B, K>],
        theta: &[Tensor<B, D>],
        phi: &[Tensor<Inner<B>, D>],
        z: Tensor<Inner<B>, D>,
    ) -> GeneratorPart<B, K> {
        let phi: Vec<Tensor<B, D>> = phi.iter().map(|p| Tensor::from_inner(p.clone())).collect();
        let fake = self.fake(theta, Tensor::from_inner(z));
        let (loss, _) = self.generator_loss(&phi, fake);
        let grads = grads_of(theta_leaves, &loss.backward());
        GeneratorPart {
            grads,
            loss: loss.inner(),
        }
    }

    /// The gradient of one player's loss with respect to both players' tensors at (theta,
    /// phi), both tracked by `B` (`phi` the discriminator's tensors as functions of
    /// `phi_leaves`) (the fake rows depend on theta at this level too): for the
    /// generator (grad_theta L_G, grad_phi L_G), for the discriminator (grad_theta L_D,
    /// grad_phi L_D). Their products with a fixed w are J w by the symmetry of second
    /// derivatives (row block theta of J w is grad_theta <grad L_G, w>); see `train::scheme::sga`.
    #[allow(clippy::too_many_arguments, clippy::type_complexity)]
    pub fn loss_gradients<B: GanBackend, const D: usize>(
        &self,
        generator: bool,
        theta: &[Tensor<B, D>],
        phi_leaves: &[Tensor<B, D>],
        phi: &[Tensor<B, D>],
        real: Tensor<Inner<B>, D>,
        z: Tensor<Inner<B>, D>,
        eps: Option<Tensor<Inner<B>, D>>,
    ) -> (Vec<Tensor<Inner<B>, D>>, Vec<Tensor<Inner<B>, D>>) {
        let fake = self.fake(theta, Tensor::from_inner(z));
        let loss = if generator {
            self.generator_loss(phi, fake).0
        } else {
            self.discriminator_loss_of(
                phi,
                Tensor::from_inner(real),
                fake,
                eps.map(Tensor::from_inner),
                true,
            )
            .loss
        };
        let grads = loss.backward();
        (grads_of(theta, &grads), grads_of(phi_leaves, &grads))
    }
}
