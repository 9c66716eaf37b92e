//! The resolved configuration of one trial: every switch the code has, with its default.
//!
//! Keys map one to one onto code switches (as in Mescheder et al.'s GAN_stability): an
//! experiment file overrides a few of them under `[base]` and sweeps others.

use serde::{Deserialize, Serialize};

/// Floating-point precision of the training backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    F32,
    F64,
}

/// Where tensors live. `cuda` needs a build with `--features cuda`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackendKind {
    /// The CPU: burn's Flex backend in f32, NdArray in f64.
    #[default]
    Cpu,
    /// The CPU with NdArray in both precisions (to cross-check the default).
    Ndarray,
    /// NVIDIA GPUs.
    Cuda,
    /// Any GPU wgpu drives (Vulkan, Metal, DX12): AMD, Intel, Apple, NVIDIA.
    Wgpu,
}

/// One trial, fully resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrialConfig {
    /// Seed of every random stream of the trial (initialisation, data, latent, penalties).
    pub seed: u64,
    /// Number of training steps; a step is `n_critic` discriminator updates and one generator
    /// update.
    pub steps: u64,
    pub precision: Precision,
    pub backend: BackendKind,
    pub data: DataConfig,
    pub latent: LatentConfig,
    /// The model P fitted to the data before training (SPEC section 3.4); `none` is the plain
    /// GAN.
    pub prior_model: PriorModelConfig,
    /// How the skip-GAN combines P and G: x = P(z) + alpha G(z).
    pub skip: SkipConfig,
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorConfig,
    pub objective: ObjectiveConfig,
    pub train: TrainConfig,
    pub record: RecordConfig,
    pub probe: ProbeConfig,
}

impl Default for TrialConfig {
    fn default() -> Self {
        TrialConfig {
            seed: 0,
            steps: 1000,
            precision: Precision::F32,
            backend: BackendKind::Cpu,
            data: DataConfig::Ring(RingData::default()),
            latent: LatentConfig::default(),
            prior_model: PriorModelConfig::None,
            skip: SkipConfig::default(),
            generator: GeneratorConfig::Mlp(MlpConfig::default()),
            discriminator: DiscriminatorConfig::Mlp(MlpConfig::default()),
            objective: ObjectiveConfig::default(),
            train: TrainConfig::default(),
            record: RecordConfig::default(),
            probe: ProbeConfig::default(),
        }
    }
}

/// The data distribution, chosen by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DataConfig {
    /// A point mass (the Dirac-GAN's data).
    Dirac(DiracData),
    /// Equal-weight 1-D Gaussian mixture with centres evenly spaced in [-spread, spread].
    Mixture1d(Mixture1dData),
    /// Equal-weight 2-D Gaussian mixture with `modes` centres on a circle.
    Ring(RingData),
    /// Equal-weight 2-D Gaussian mixture on a `side` x `side` grid centred at 0.
    Grid(GridData),
    /// The 2-D swiss roll.
    SwissRoll(SwissRollData),
    /// Pairs (x, y) with x uniform in [-range, range] and y = f(x) + noise.
    Regression(RegressionData),
    /// Rows of a CSV file of numeric columns (a header row is required).
    Csv(CsvData),
    /// Square images, grey or colour, as rows of values in [-1, 1] (see `data::images`).
    Images(ImageData),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DiracData {
    /// Location of the point mass.
    pub at: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mixture1dData {
    pub modes: usize,
    pub spread: f64,
    pub std: f64,
}
impl Default for Mixture1dData {
    fn default() -> Self {
        Mixture1dData {
            modes: 3,
            spread: 4.0,
            std: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RingData {
    pub modes: usize,
    pub radius: f64,
    pub std: f64,
}
impl Default for RingData {
    fn default() -> Self {
        RingData {
            modes: 8,
            radius: 2.0,
            std: 0.02,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GridData {
    pub side: usize,
    pub spacing: f64,
    pub std: f64,
}
impl Default for GridData {
    fn default() -> Self {
        GridData {
            side: 5,
            spacing: 2.0,
            std: 0.05,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SwissRollData {
    /// Std of the Gaussian noise added to each coordinate (before scaling).
    pub noise: f64,
    /// Factor applied to the roll (t cos t, t sin t) with t in [1.5 pi, 4.5 pi].
    pub scale: f64,
}
impl Default for SwissRollData {
    fn default() -> Self {
        SwissRollData {
            noise: 0.25,
            scale: 0.2,
        }
    }
}

/// The function of the regression-style task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegressionFn {
    Linear,
    Quadratic,
    Sin,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegressionData {
    pub function: RegressionFn,
    pub range: f64,
    pub noise: f64,
}
impl Default for RegressionData {
    fn default() -> Self {
        RegressionData {
            function: RegressionFn::Sin,
            range: 3.0,
            noise: 0.1,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CsvData {
    /// Path of the CSV file, relative to the experiment file.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageData {
    pub source: ImageSource,
    /// `fashion_mnist` / `mnist`: the folder of the IDX files (Fashion-MNIST's default is
    /// Debian's /usr/share/datasets/fashion-mnist); `idx`: the images file; `folder`: the
    /// folder of PNG/JPEG images. Relative to the experiment file.
    pub path: String,
    /// Side of the square images in pixels: IDX images must have it, a folder's images are
    /// scaled and centre-cropped to it, generated shapes are drawn at it.
    pub size: usize,
    /// 1 (grey) or 3 (colour).
    pub channels: usize,
    /// `shapes`: how many images to generate.
    pub count: usize,
    /// `shapes`: the seed of the generated set (the same set for every trial).
    pub seed: u64,
}
impl Default for ImageData {
    fn default() -> Self {
        ImageData {
            source: ImageSource::FashionMnist,
            path: String::new(),
            size: 28,
            channels: 1,
            count: 2048,
            seed: 0,
        }
    }
}

/// Where images come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ImageSource {
    /// Fashion-MNIST's IDX files (train-* for training, t10k-* held out).
    #[default]
    FashionMnist,
    /// MNIST's IDX files, from the folder `path`.
    Mnist,
    /// One IDX images file (labels read from the `*-labels-idx1-ubyte*` file beside it, if
    /// any); the last tenth is held out.
    Idx,
    /// A folder of PNG/JPEG files; the last tenth (by name) is held out.
    Folder,
    /// Generated discs, squares, rings and crosses (labelled), for tests and quick studies.
    Shapes,
}

/// The latent prior p(z).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Prior {
    /// Standard normal.
    #[default]
    Normal,
    /// Uniform on [-1, 1] in each coordinate.
    Uniform,
    /// Equal-weight mixture of `components` Gaussians of std `std` in each coordinate; their
    /// means lie evenly in [-spread, spread] when `dim` is 1, else on the circle of radius
    /// `spread` in the first two coordinates (zero in the others).
    Mixture,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LatentConfig {
    pub prior: Prior,
    pub dim: usize,
    /// Components of the `mixture` prior (ignored by the others, so that a sweep over
    /// `latent.prior` can keep them in its base).
    pub components: usize,
    /// Where the `mixture` prior's means lie (see [`Prior::Mixture`]).
    pub spread: f64,
    /// Std of each `mixture` component.
    pub std: f64,
}
impl Default for LatentConfig {
    fn default() -> Self {
        LatentConfig {
            prior: Prior::Normal,
            dim: 2,
            components: 4,
            spread: 2.0,
            std: 0.5,
        }
    }
}

/// The prior model P fitted to the training data before adversarial training, chosen by
/// `kind`. Each fit draws `samples` rows from the trial's own `prior_fit` stream (all rows of
/// a CSV file), so it depends on the data, its settings and the seed only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PriorModelConfig {
    /// No prior model: P(z) = 0, the plain GAN.
    #[default]
    None,
    /// A Gaussian along the data's top principal directions, in closed form:
    /// P(z) = mean + z[..k] diag(sqrt(lambda)) V_k^T (k = `components`).
    PcaGaussian(PcaGaussianConfig),
    /// A Gaussian mixture fitted by EM (full covariances); z's first `dim(x)` coordinates
    /// drive the component's Gaussian and coordinate `dim(x)` picks the component.
    Gmm(GmmConfig),
    /// An MLP auto-encoder pre-trained on reconstruction; P(z) decodes a Gaussian fitted to
    /// the codes: P(z) = dec(code_mean + z[..k] A), A^T A the codes' covariance.
    Autoencoder(AutoencoderConfig),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PcaGaussianConfig {
    /// Principal directions kept (k <= dim(x), k <= latent.dim).
    pub components: usize,
    pub samples: usize,
}
impl Default for PcaGaussianConfig {
    fn default() -> Self {
        PcaGaussianConfig {
            components: 2,
            samples: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GmmConfig {
    pub components: usize,
    pub samples: usize,
    /// EM stops when the mean log-likelihood per row gains less than this.
    pub tol: f64,
    pub max_iter: usize,
    /// Added to each covariance's diagonal so no component collapses onto one point.
    pub reg_covar: f64,
}
impl Default for GmmConfig {
    fn default() -> Self {
        GmmConfig {
            components: 8,
            samples: 10_000,
            tol: 1e-6,
            max_iter: 500,
            reg_covar: 1e-6,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoencoderConfig {
    /// Dimension of the codes (k <= latent.dim).
    pub code_dim: usize,
    /// Hidden layers of the encoder and of the decoder.
    pub depth: usize,
    pub width: usize,
    pub activation: Activation,
    /// Adam steps of reconstruction training, batch rows and learning rate.
    pub steps: u64,
    pub batch: usize,
    pub lr: f64,
    pub samples: usize,
}
impl Default for AutoencoderConfig {
    fn default() -> Self {
        AutoencoderConfig {
            code_dim: 2,
            depth: 2,
            width: 64,
            activation: Activation::Elu,
            steps: 2000,
            batch: 128,
            lr: 1e-3,
            samples: 10_000,
        }
    }
}

/// The skip-GAN: x = P(z) + alpha G(z).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SkipConfig {
    /// alpha, or its initial value when learned.
    pub alpha: f64,
    /// alpha is a generator parameter (`skip.alpha`), trained with G.
    pub learn_alpha: bool,
    /// P's parameters are generator parameters (`prior.*`), trained with G at `fine_tune_lr`.
    pub fine_tune: bool,
    /// P's learning rate when fine-tuned (with the generator's optimiser).
    pub fine_tune_lr: f64,
}
impl Default for SkipConfig {
    fn default() -> Self {
        SkipConfig {
            alpha: 1.0,
            learn_alpha: false,
            fine_tune: false,
            fine_tune_lr: 1e-5,
        }
    }
}

/// Hidden-layer non-linearity of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    #[default]
    Relu,
    /// Leaky ReLU with slope 0.2 for negative inputs.
    LeakyRelu,
    Tanh,
    /// ELU with alpha = 1.
    Elu,
    Sigmoid,
}

/// A multilayer perceptron: `depth` hidden layers of `width` units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MlpConfig {
    pub depth: usize,
    pub width: usize,
    pub activation: Activation,
}
impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            depth: 2,
            width: 128,
            activation: Activation::Relu,
        }
    }
}

/// A DCGAN player for image data (see `nets::dcgan`): `width` channels next to the image,
/// doubling per layer away from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DcganConfig {
    pub width: usize,
    /// Normalisation of the hidden layers (the discriminator's first layer has none).
    pub norm: Norm,
}
impl Default for DcganConfig {
    fn default() -> Self {
        DcganConfig {
            width: 32,
            norm: Norm::Batch,
        }
    }
}

/// Normalisation of a DCGAN's hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Norm {
    /// Batch norm on the statistics of the batch at hand (DCGAN).
    #[default]
    Batch,
    /// Per-sample normalisation over channels and pixels, scaled per channel (WGAN-GP critics:
    /// batch norm would tie a sample's gradient to the rest of its batch).
    Layer,
    None,
}

/// Initial value of the single parameter of a Dirac-GAN player.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalarInit {
    pub init: f64,
}
impl Default for ScalarInit {
    fn default() -> Self {
        ScalarInit { init: 1.0 }
    }
}

/// The generator G(z; theta), chosen by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum GeneratorConfig {
    Mlp(MlpConfig),
    /// The Dirac-GAN generator: outputs theta (one value per data dimension) for every z.
    Dirac(ScalarInit),
    /// The DCGAN generator (image data).
    Dcgan(DcganConfig),
}

/// The discriminator (or critic) D(x; phi), chosen by `kind`. Its output is a logit/score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DiscriminatorConfig {
    Mlp(MlpConfig),
    /// The Dirac-GAN discriminator D(x) = psi . x, without bias.
    Linear(ScalarInit),
    /// The DCGAN discriminator (image data).
    Dcgan(DcganConfig),
    /// EBGAN's auto-encoder discriminator (objective.loss = "ebgan").
    Ebgan(EbganConfig),
}

/// EBGAN's auto-encoder: on image data a DCGAN encoder (strided convolutions to a linear code)
/// and decoder (the DCGAN generator from the code); on other data MLPs of `depth` x `width`.
/// Its output is the energy, the mean squared reconstruction error per coordinate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EbganConfig {
    pub code_dim: usize,
    pub width: usize,
    /// Hidden layers of each MLP half (non-image data).
    pub depth: usize,
    pub activation: Activation,
    /// Normalisation of the DCGAN halves (image data).
    pub norm: Norm,
}
impl Default for EbganConfig {
    fn default() -> Self {
        EbganConfig {
            code_dim: 16,
            width: 64,
            depth: 2,
            activation: Activation::Relu,
            norm: Norm::Batch,
        }
    }
}

/// The adversarial loss (see `game::loss` for the formulas).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Loss {
    /// Goodfellow et al.'s original min-max loss.
    Minimax,
    /// The generator maximises log D(G(z)) instead.
    #[default]
    NonSaturating,
    /// Wasserstein GAN, critic weights clipped to [-clip, clip] after each critic update.
    WganClip,
    /// Wasserstein GAN with the gradient penalty of Gulrajani et al.
    WganGp,
    /// Least-squares GAN (a = 0, b = c = 1).
    LeastSquares,
    /// Hinge loss.
    Hinge,
    /// Energy-based GAN (Zhao et al. 2017): D is an auto-encoder (`discriminator.kind =
    /// "ebgan"`) whose reconstruction error is the energy; margin loss for D, and for G the
    /// fake energy plus the pull-away term on the encoder's codes.
    Ebgan,
}

/// A penalty added to the discriminator's loss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Regulariser {
    #[default]
    None,
    /// (gamma/2) E_real |grad_x D(x)|^2.
    R1,
    /// (gamma/2) E_fake |grad_x D(x)|^2.
    R2,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ObjectiveConfig {
    pub loss: Loss,
    /// Weight-clipping bound for `wgan_clip`.
    pub clip: f64,
    /// lambda of the WGAN-GP penalty.
    pub gp_weight: f64,
    pub regulariser: Regulariser,
    /// gamma of R1/R2.
    pub reg_weight: f64,
    /// PacGAN (Lin et al. 2018): the discriminator judges packs of `pack` samples, real or
    /// fake, concatenated into one input row (1: the plain GAN).
    pub pack: usize,
    /// Instance noise (Sønderby et al. 2016; Mescheder et al. 2018): Gaussian noise of this
    /// std is added to every real and fake sample the discriminator sees (0: none).
    pub instance_noise: f64,
    /// Steps over which the instance noise's std falls linearly to 0 (0: it stays constant).
    pub noise_anneal: u64,
    /// Spectral normalisation (Miyato et al. 2018): each discriminator weight matrix enters as
    /// W / sigma(W), sigma by one power-iteration step per training step (see `game::spectral`).
    pub spectral_norm: bool,
    /// EBGAN's margin m: L_D = E D(x) + E max(0, m - D(G(z))).
    pub margin: f64,
    /// EBGAN's pull-away weight lambda_PT in L_G = E D(G(z)) + lambda_PT f_PT.
    pub pt_weight: f64,
}
impl Default for ObjectiveConfig {
    fn default() -> Self {
        ObjectiveConfig {
            loss: Loss::NonSaturating,
            clip: 0.01,
            gp_weight: 10.0,
            regulariser: Regulariser::None,
            reg_weight: 10.0,
            pack: 1,
            instance_noise: 0.0,
            noise_anneal: 0,
            spectral_norm: false,
            margin: 1.0,
            pt_weight: 0.1,
        }
    }
}

/// How the two players' updates are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UpdateScheme {
    /// Both gradients at the same point and the same batch, then both steps.
    #[default]
    Simultaneous,
    /// The discriminator steps first; the generator then sees the updated discriminator.
    Alternating,
    /// The generator steps first (as in Mescheder et al.'s code); the discriminator's
    /// `n_critic` updates then see the updated generator.
    AlternatingGFirst,
    /// Extragradient (Korpelevich 1976; Gidel et al. 2019): a lookahead step with both
    /// gradients at the current point, then the update from the current point with both
    /// gradients at the lookahead point.
    Extragradient,
    /// Consensus optimisation (Mescheder et al. 2017): both players follow
    /// v + gamma grad(|v|^2 / 2) = v + gamma J^T v (gamma = `train.consensus_weight`), exact
    /// through nested autodiff, at one point on one batch.
    Consensus,
    /// Optimistic updates (Daskalakis et al. 2018): p <- p - 2 u_t + u_{t-1}, u_t the
    /// optimiser's step for the gradients at the current point (both on one batch).
    Optimistic,
    /// The gradient flow by fixed-step RK4 with step `train.opt_g.lr` (plain SGD for both
    /// players with one step size, `n_critic` = 1).
    Rk4,
    /// The gradient flow by adaptive Dormand-Prince 5(4), one accepted step per training step,
    /// tolerances `train.rtol` and `train.atol`, first step `train.opt_g.lr` (plain SGD for
    /// both players with one step size, `n_critic` = 1).
    Rk45,
    /// Symplectic gradient adjustment (Balduzzi et al. 2018): both players follow
    /// v + lambda A^T v, A = (J - J^T) / 2 (lambda = `train.sga_weight`, its sign by the
    /// alignment rule when `train.sga_align`), exact through nested autodiff.
    Sga,
}

/// An optimiser, chosen by `kind`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum OptimizerConfig {
    /// SGD with heavy-ball momentum (PyTorch convention: buf = m buf + g; p -= lr buf).
    /// Negative momentum is allowed (Gidel et al. 2019).
    Sgd(SgdConfig),
    /// Adam with bias correction; beta1 may be negative.
    Adam(AdamConfig),
    /// RMSProp: v = alpha v + (1 - alpha) g^2; p -= lr g / (sqrt(v) + eps).
    Rmsprop(RmspropConfig),
}
impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig::Adam(AdamConfig::default())
    }
}
impl OptimizerConfig {
    /// The learning rate.
    pub fn lr(&self) -> f64 {
        match self {
            OptimizerConfig::Sgd(c) => c.lr,
            OptimizerConfig::Adam(c) => c.lr,
            OptimizerConfig::Rmsprop(c) => c.lr,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SgdConfig {
    pub lr: f64,
    pub momentum: f64,
}
impl Default for SgdConfig {
    fn default() -> Self {
        SgdConfig {
            lr: 0.01,
            momentum: 0.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}
impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RmspropConfig {
    pub lr: f64,
    pub alpha: f64,
    pub eps: f64,
}
impl Default for RmspropConfig {
    fn default() -> Self {
        RmspropConfig {
            lr: 1e-4,
            alpha: 0.99,
            eps: 1e-8,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    pub batch: usize,
    pub update: UpdateScheme,
    /// Discriminator updates per step (the last one is simultaneous with the generator's
    /// under `simultaneous`).
    pub n_critic: usize,
    pub opt_g: OptimizerConfig,
    pub opt_d: OptimizerConfig,
    /// A loss whose magnitude exceeds this (or is not finite) marks the trial diverged.
    pub diverge_above: f64,
    /// gamma of the `consensus` update: the players follow v + gamma J^T v.
    pub consensus_weight: f64,
    /// lambda of the `sga` update: the players follow v + lambda A^T v.
    pub sga_weight: f64,
    /// Choose lambda's sign per step by Balduzzi et al.'s alignment rule.
    pub sga_align: bool,
    /// Relative and absolute tolerances of the adaptive flow integrator (`rk45`, and the flow
    /// that `record.drift` compares a discrete trial with).
    pub rtol: f64,
    pub atol: f64,
}
impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            batch: 64,
            update: UpdateScheme::Simultaneous,
            n_critic: 1,
            opt_g: OptimizerConfig::default(),
            opt_d: OptimizerConfig::default(),
            diverge_above: 1e6,
            consensus_weight: 1.0,
            sga_weight: 1.0,
            sga_align: true,
            rtol: 1e-6,
            atol: 1e-9,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecordConfig {
    /// Write a row of metrics.csv every this many steps.
    pub every: u64,
    /// Measure mode coverage (mixtures) every this many steps, and at the end.
    pub modes_every: u64,
    /// Generated samples used for mode coverage and for image sample quality.
    pub eval_samples: usize,
    /// On labelled image data, measure sample quality at every mode-coverage step with the
    /// data set's classifier (trained once per data set and cached; see `quality`).
    pub image_quality: bool,
    /// Save the parameters (`TRIAL/checkpoints/step-N.npy`) and the trial state (for resuming,
    /// `state-N.bin`) every this many steps; the first and the final point are always saved.
    /// 0: only those two.
    pub checkpoint_every: u64,
    /// Also save the trial state whenever this many minutes of training have passed since the
    /// last save, so an interrupted trial loses at most that much work. 0: by steps only.
    pub checkpoint_minutes: f64,
    /// Record each step's distance to the gradient flow from the same start at the same time
    /// (step k of plain SGD with step h is time k h; see `train::drift`).
    pub drift: bool,
}
impl Default for RecordConfig {
    fn default() -> Self {
        RecordConfig {
            every: 1,
            modes_every: 500,
            eval_samples: 2000,
            image_quality: true,
            checkpoint_every: 1000,
            checkpoint_minutes: 2.0,
            drift: false,
        }
    }
}

/// Stability probes (game-Jacobian spectrum, player Hessians) during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProbeConfig {
    /// Probe every this many steps, at the first step and after the last; 0 turns probes off.
    pub every: u64,
    /// Rows of the fixed probe batch (drawn once per trial from its own stream).
    pub batch: usize,
    /// Largest game (parameters of both players) whose full Jacobian is formed; larger games
    /// get the `top_k` eigenvalues of J by Arnoldi and the Hessians' extremes by Lanczos.
    pub max_dense: usize,
    /// Eigenvalues wanted from Arnoldi (and from each end of each Hessian by Lanczos).
    pub top_k: usize,
    /// Which eigenvalues of J Arnoldi looks for.
    pub which: ProbeWhich,
    /// `exact` (nested autodiff) or `finite_difference` products with J.
    pub product: ProbeProduct,
    /// Relative residual under which a Ritz value counts as converged.
    pub tol: f64,
    /// Largest Krylov basis: Arnoldi restarts when it is full, Lanczos stops there.
    pub max_krylov: usize,
    /// Implicit restarts Arnoldi may make before it gives up (unconverged values are still
    /// recorded, with their residuals).
    pub max_restarts: usize,
    /// Where the products with J run: `cpu` (f64 on the CPU, whatever the trial's backend) or
    /// `trial` (the trial's backend: f32 on a GPU). Eigen-decompositions run on the CPU.
    pub device: ProbeDevice,
    /// Threads for the dense spectra of 200 rows and more (OpenBLAS's dgeev and dsyev, or
    /// faer's solvers). Unset: OpenBLAS on 2 threads and faer on 1, whose bits are the same on
    /// every machine; any other count is faster on a machine with more cores, but its
    /// eigenvalues differ in their last bits (a few 1e-15 of the largest) from the default's,
    /// and the trial's status.toml says so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eigen_threads: Option<usize>,
}

/// Where a probe's products with the game Jacobian run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProbeDevice {
    /// f64 on the CPU.
    #[default]
    Cpu,
    /// The trial's own backend and precision (f32 on `cuda` and `wgpu`).
    Trial,
}
impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            every: 0,
            batch: 256,
            max_dense: 3000,
            top_k: 20,
            which: ProbeWhich::LargestMagnitude,
            product: ProbeProduct::Exact,
            tol: 1e-8,
            max_krylov: 400,
            max_restarts: 50,
            device: ProbeDevice::Cpu,
            eigen_threads: None,
        }
    }
}

/// How probes multiply by the game Jacobian.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProbeProduct {
    /// J^T w exactly, by nested automatic differentiation.
    #[default]
    Exact,
    /// J w by central differences of the field (f64): a cross-check of the exact product.
    FiniteDifference,
}

/// The end of the spectrum a Krylov probe looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ProbeWhich {
    #[default]
    LargestMagnitude,
    LargestReal,
    /// The least stable directions of the gradient flow.
    SmallestReal,
    LargestImag,
}
