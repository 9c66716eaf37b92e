//! The game: two players, an objective and its regularisers. Everything here takes the
//! parameters as tensors of the caller's backend, so training and probes share the code.
//! Tensors are rank 2 (rows x features) for one trial; probes and batched trials stack
//! parameter copies in rank 3 (see `Net::forward`), where every loss below is one value per
//! copy (see `loss::row_mean`).

pub mod field;
pub mod loss;
pub mod penalty;
pub mod spectral;

use burn::tensor::{backend::Backend, Tensor};

use crate::backend::GanBackend;
use crate::net_ops::NetOps;

use std::sync::Arc;

use crate::data::images::ImageShape;
use crate::nets::{Net, SkipNet};
use crate::prior::FittedPrior;
use crate::spec::{Loss, ObjectiveConfig, Regulariser, TrialConfig};
use loss::row_mean;

/// Players' architectures and the objective.
#[derive(Debug, Clone)]
pub struct Game {
    pub generator: Net,
    pub discriminator: Net,
    pub objective: ObjectiveConfig,
    /// Each generator tensor's learning rate over `train.opt_g.lr`: 1, but
    /// `skip.fine_tune_lr / opt_g.lr` for a fine-tuned prior model's tensors (`prior.*`).
    pub generator_lr_scale: Vec<f64>,
    /// Columns of a latent row that the generator reads; under instance noise a latent row
    /// carries after them the noise its fake sample is judged with (see [`Game::fake`]).
    pub z_dim: usize,
    /// Batched trials whose penalty weights differ: each copy's weights, which then replace
    /// `objective.gp_weight` and `objective.reg_weight` (see `train::batched`).
    pub copy_weights: Option<CopyWeights>,
}

/// The penalty weights of stacked copies, one per copy.
#[derive(Debug, Clone, PartialEq)]
pub struct CopyWeights {
    pub gp: Vec<f64>,
    pub reg: Vec<f64>,
}

/// `penalty` (one value per copy, computed with weight 1) times each copy's weight.
fn weighed<B: Backend>(penalty: Tensor<B, 1>, weights: &[f64]) -> Tensor<B, 1> {
    let w = Tensor::<B, 1>::from_data(
        burn::tensor::TensorData::new(weights.to_vec(), [weights.len()])
            .convert_dtype(penalty.dtype()),
        (&penalty.device(), penalty.dtype()),
    );
    penalty * w
}

/// The discriminator's loss at one point, with the means it is made of.
pub struct DiscriminatorLoss<B: Backend> {
    /// L_D including penalties.
    pub loss: Tensor<B, 1>,
    /// Mean D output on real rows.
    pub d_real: Tensor<B, 1>,
    /// Mean D output on fake rows.
    pub d_fake: Tensor<B, 1>,
}

impl Game {
    /// The game a trial configuration describes, for data of dimension `x_dim`, with the
    /// prior model fitted for it (`None` for `prior_model = none`). With a prior model the
    /// generator is the skip-GAN's x = P(z) + alpha G(z); without one it is G itself, whatever
    /// the `skip` settings say (SPEC 3.4: with P = none the skip-GAN is the plain GAN), so a
    /// sweep over `prior_model` compares the skip-GAN with the plain GAN number for number.
    pub fn new(
        cfg: &TrialConfig,
        x_dim: usize,
        image: Option<ImageShape>,
        prior: Option<Arc<FittedPrior>>,
    ) -> Game {
        let g = Net::generator(&cfg.generator, cfg.latent.dim, x_dim, image);
        let k = &cfg.skip;
        let generator = match prior {
            None => g,
            Some(prior) => Net::Skip(Box::new(SkipNet {
                generator: g,
                prior: Some(prior),
                alpha: k.alpha,
                learn_alpha: k.learn_alpha,
                fine_tune: k.fine_tune,
            })),
        };
        let ratio = k.fine_tune_lr / cfg.train.opt_g.lr();
        let generator_lr_scale = generator
            .param_specs()
            .iter()
            .map(|s| {
                if s.name.starts_with("prior.") {
                    ratio
                } else {
                    1.0
                }
            })
            .collect();
        Game {
            copy_weights: None,
            z_dim: cfg.latent.dim,
            generator_lr_scale,
            generator,
            // PacGAN: D reads `pack` samples side by side.
            // PacGAN on images: the pack's samples side by side are its images' channels.
            discriminator: Net::discriminator(
                &cfg.discriminator,
                x_dim * cfg.objective.pack,
                image.map(|i| ImageShape {
                    channels: i.channels * cfg.objective.pack,
                    ..i
                }),
            ),
            objective: cfg.objective.clone(),
        }
    }

    /// Whether a player is convolutional (DCGAN, or EBGAN on images): probes then compute
    /// on Flex (see `probe::on_probe_backend`).
    pub fn convolutional(&self) -> bool {
        let conv = |n: &Net| match n {
            Net::Dcgan(_) => true,
            Net::Ebgan(e) => matches!(e.encoder, Net::Dcgan(_)),
            Net::Skip(s) => matches!(s.generator, Net::Dcgan(_)),
            _ => false,
        };
        conv(&self.generator) || conv(&self.discriminator)
    }

    /// Rows `[.., n, d]` as packs `[.., n / pack, pack d]`: each pack's samples side by side
    /// (PacGAN); the rows themselves for `pack = 1`.
    pub fn pack<B: burn::tensor::backend::Backend, const D: usize>(
        &self,
        x: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let m = self.objective.pack;
        if m == 1 {
            return x;
        }
        let mut dims = x.dims();
        dims[D - 2] /= m;
        dims[D - 1] *= m;
        x.reshape(dims)
    }

    /// Rows of a batch of `n` samples the discriminator judges (packs under PacGAN): the WGAN-GP
    /// weights come one per such row.
    pub fn judged_rows(&self, n: usize) -> usize {
        n / self.objective.pack
    }

    /// The instance noise's std after `step` steps: `objective.instance_noise`, falling
    /// linearly to 0 over `objective.noise_anneal` steps when that is not 0.
    pub fn noise_std(&self, step: u64) -> f64 {
        let o = &self.objective;
        if o.noise_anneal == 0 {
            o.instance_noise
        } else {
            o.instance_noise * (1.0 - step as f64 / o.noise_anneal as f64).max(0.0)
        }
    }

    /// Whether samples are judged with instance noise (then latent rows carry it).
    pub fn noisy(&self) -> bool {
        self.objective.instance_noise > 0.0
    }

    /// The fake samples D judges for latent rows `z`: G(z), plus under instance noise the
    /// noise the rows carry after their `z_dim` latent columns (drawn with them, so every
    /// update scheme and probe judges a sample with the noise of its own row).
    pub fn fake<B: crate::net_ops::NetOps, const D: usize>(
        &self,
        theta: &[Tensor<B, D>],
        z: Tensor<B, D>,
    ) -> Tensor<B, D> {
        if !self.noisy() {
            return self.generator.forward(theta, z);
        }
        let cols = z.dims()[D - 1];
        let latent = z.clone().narrow(D - 1, 0, self.z_dim);
        let noise = z.narrow(D - 1, self.z_dim, cols - self.z_dim);
        self.generator.forward(theta, latent) + noise
    }

    /// Whether the WGAN-GP interpolation weights are needed.
    pub fn needs_interpolation(&self) -> bool {
        self.objective.loss == Loss::WganGp
    }

    /// L_D(phi) for given real and fake rows (fake rows are treated as constants). `eps` holds
    /// the WGAN-GP interpolation weights (one per judged row, see [`Game::judged_rows`]) when
    /// [`Game::needs_interpolation`].
    pub fn discriminator_loss<B: GanBackend, const D: usize>(
        &self,
        phi: &[Tensor<B, D>],
        real: Tensor<B, D>,
        fake: Tensor<B, D>,
        eps: Option<Tensor<B, D>>,
    ) -> DiscriminatorLoss<B> {
        self.discriminator_loss_of(phi, real, fake, eps, false)
    }

    /// L_D as [`Game::discriminator_loss`], and with `fake_tracked` differentiable in the fake
    /// rows where the caller tracks them (grad_theta L_D, which symplectic gradient adjustment
    /// needs), penalties included.
    pub fn discriminator_loss_of<B: GanBackend, const D: usize>(
        &self,
        phi: &[Tensor<B, D>],
        real: Tensor<B, D>,
        fake: Tensor<B, D>,
        eps: Option<Tensor<B, D>>,
        fake_tracked: bool,
    ) -> DiscriminatorLoss<B> {
        let rows = D - 2;
        let (real, fake) = (self.pack(real), self.pack(fake));
        let n_real = real.dims()[rows];
        let fake = if fake_tracked { fake } else { fake.detach() };
        let (d_real, d_fake) = if self.discriminator.batch_statistics() {
            // Batch norm normalises by the statistics of the rows it is given: real and fake
            // rows go in separate passes (as DCGAN trains), or the discriminator would learn
            // to tell them apart within a mixed batch and judge a batch of fakes alone, as the
            // generator's loss sees it, by other statistics.
            (
                self.discriminator.forward(phi, real.clone()),
                self.discriminator.forward(phi, fake.clone()),
            )
        } else {
            // One pass over real and fake rows together: fewer, larger matrix products.
            let out = self
                .discriminator
                .forward(phi, Tensor::cat(vec![real.clone(), fake.clone()], rows));
            (
                out.clone().narrow(rows, 0, n_real),
                out.narrow(rows, n_real, fake.dims()[rows]),
            )
        };
        let o = &self.objective;
        let (m_real, m_fake) = (
            row_mean(loss::score(o.loss, d_real.clone())),
            row_mean(loss::score(o.loss, d_fake.clone())),
        );
        let mut loss = loss::discriminator_loss(o, d_real, d_fake);
        // Per-copy weights are applied after the penalty (computed with weight 1; the
        // squared-gradient penalty's gamma/2 with gamma 2).
        let per_copy = self.copy_weights.as_ref();
        if o.loss == Loss::WganGp && o.gp_weight > 0.0 {
            if let Some(eps) = eps {
                let gp = penalty::gradient_penalty(
                    &self.discriminator,
                    phi,
                    real.clone(),
                    fake.clone(),
                    eps,
                    per_copy.map_or(o.gp_weight, |_| 1.0),
                    fake_tracked,
                );
                loss = loss
                    + match per_copy {
                        Some(w) => weighed(gp, &w.gp),
                        None => gp,
                    };
            }
        }
        if o.reg_weight > 0.0 {
            let judged = match o.regulariser {
                Regulariser::None => None,
                Regulariser::R1 => Some((real, false)),
                Regulariser::R2 => Some((fake, fake_tracked)),
            };
            if let Some((x, tracked)) = judged {
                let gamma = per_copy.map_or(o.reg_weight, |_| 2.0);
                let r =
                    penalty::squared_gradient_penalty(&self.discriminator, phi, x, gamma, tracked);
                loss = loss
                    + match per_copy {
                        Some(w) => {
                            let half: Vec<f64> = w.reg.iter().map(|g| g / 2.0).collect();
                            weighed(r, &half)
                        }
                        None => r,
                    };
            }
        }
        DiscriminatorLoss {
            loss,
            d_real: m_real,
            d_fake: m_fake,
        }
    }

    /// L_G for generated rows `fake` (tracked through theta by the caller) against D(phi).
    /// Returns the loss and the mean D output on the fake rows.
    pub fn generator_loss<B: NetOps, const D: usize>(
        &self,
        phi: &[Tensor<B, D>],
        fake: Tensor<B, D>,
    ) -> (Tensor<B, 1>, Tensor<B, 1>) {
        let d_fake = self.discriminator.forward(phi, self.pack(fake));
        let mean = row_mean(loss::score(self.objective.loss, d_fake.clone()));
        (loss::generator_loss(&self.objective, d_fake), mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::CpuF64;
    use crate::backend::{host, matrix, CPU};
    use crate::spec::{DiscriminatorConfig, MlpConfig};

    #[test]
    fn a_pack_is_its_samples_side_by_side() {
        type B = CpuF64;
        let mut cfg = TrialConfig::default();
        cfg.discriminator = DiscriminatorConfig::Mlp(MlpConfig {
            depth: 1,
            width: 3,
            ..Default::default()
        });
        cfg.objective.pack = 2;
        let packed = Game::new(&cfg, 2, None, None);
        // The plain game on 4-column data has the same discriminator.
        cfg.objective.pack = 1;
        let wide = Game::new(&cfg, 4, None, None);
        assert_eq!(packed.discriminator, wide.discriminator);
        let phi: Vec<Tensor<B, 2>> = packed
            .discriminator
            .param_specs()
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let v = (0..s.len()).map(|k| ((i * 7 + k * 3) % 11) as f64 / 11.0 - 0.4);
                matrix::<B>(v.collect(), s.rows, s.cols, &CPU)
            })
            .collect();
        // Rows (a, b, c, d) of 2 columns judged as packs [a b] and [c d].
        let rows: Vec<f64> = (0..8).map(|i| i as f64 * 0.3 - 1.0).collect();
        let fake: Vec<f64> = rows.iter().map(|x| -x * 0.5).collect();
        let l_packed = packed.discriminator_loss(
            &phi,
            matrix::<B>(rows.clone(), 4, 2, &CPU),
            matrix::<B>(fake.clone(), 4, 2, &CPU),
            None,
        );
        let l_wide = wide.discriminator_loss(
            &phi,
            matrix::<B>(rows, 2, 4, &CPU),
            matrix::<B>(fake.clone(), 2, 4, &CPU),
            None,
        );
        assert_eq!(host(l_packed.loss), host(l_wide.loss));
        let (g_packed, _) = packed.generator_loss(&phi, matrix::<B>(fake.clone(), 4, 2, &CPU));
        let (g_wide, _) = wide.generator_loss(&phi, matrix::<B>(fake, 2, 4, &CPU));
        assert_eq!(host(g_packed), host(g_wide));
        assert_eq!(packed.judged_rows(64), 32);
    }

    #[test]
    fn a_batch_normed_discriminator_judges_real_and_fake_rows_in_separate_batches() {
        use crate::data::images::ImageShape;
        use crate::spec::{DcganConfig, Norm};
        type B = CpuF64;
        let image = ImageShape {
            channels: 1,
            size: 16,
        };
        let mut cfg = TrialConfig::default();
        let mut d2 = |norm| {
            cfg.discriminator = DiscriminatorConfig::Dcgan(DcganConfig { width: 2, norm });
            Game::new(&cfg, 256, Some(image), None)
        };
        let (batch, layer) = (d2(Norm::Batch), d2(Norm::Layer));
        assert!(batch.discriminator.batch_statistics());
        assert!(!layer.discriminator.batch_statistics());
        let phi: Vec<Tensor<B, 2>> = batch
            .discriminator
            .init(&mut crate::rng::stream(
                1,
                crate::rng::Stream::InitDiscriminator,
            ))
            .into_iter()
            .zip(batch.discriminator.param_specs())
            .map(|(v, s)| matrix::<B>(v, s.rows, s.cols, &CPU))
            .collect();
        let real: Vec<f64> = (0..3 * 256)
            .map(|i| ((i * 37) % 101) as f64 / 50.0 - 1.0)
            .collect();
        let fake: Vec<f64> = (0..3 * 256)
            .map(|i| ((i * 11) % 13) as f64 / 13.0 - 0.8)
            .collect();
        let rows = |v: &[f64]| matrix::<B>(v.to_vec(), 3, 256, &CPU);
        let l = batch.discriminator_loss(&phi, rows(&real), rows(&fake), None);
        // D(real) and D(fake) as each batch alone gives them: the generator's loss, which
        // sees a batch of fakes alone, judges by the same statistics.
        let alone = |x: &[f64]| host(batch.discriminator.forward(&phi, rows(x)).mean())[0];
        assert!((host(l.d_real)[0] - alone(&real)).abs() < 1e-12);
        assert!((host(l.d_fake.clone())[0] - alone(&fake)).abs() < 1e-12);
        let both: Vec<f64> = real.iter().chain(&fake).copied().collect();
        let mixed = batch
            .discriminator
            .forward(&phi, matrix::<B>(both, 6, 256, &CPU))
            .narrow(0, 3, 3)
            .mean();
        assert!((host(mixed)[0] - host(l.d_fake)[0]).abs() > 1e-6);
    }
}
