//! Players' architectures. A [`Net`] knows its parameter shapes and its forward pass for any
//! backend; the parameter values live elsewhere (see [`Player`]). Keeping the two apart lets
//! one forward pass run untracked, tracked, or under nested autodiff for input-gradient
//! penalties. Linear layers are written as `x.matmul(w) + b`: burn's fused `nn::Linear`
//! cannot be differentiated twice.

mod conv;
pub mod dcgan;
pub mod ebgan;

use std::sync::Arc;

use burn::tensor::{activation, backend::Backend, Tensor};
use rand::Rng;

use crate::backend::matrix;
use crate::data::images::ImageShape;
use crate::net_ops::NetOps;
use crate::prior::FittedPrior;
use crate::spec::{Activation, DiscriminatorConfig, GeneratorConfig};

/// Name and shape of one parameter tensor (biases are `1 x n`).
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    pub name: String,
    pub rows: usize,
    pub cols: usize,
}

impl ParamSpec {
    /// Number of scalars.
    pub fn len(&self) -> usize {
        self.rows * self.cols
    }
    /// Whether the tensor holds no scalar.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An architecture.
#[derive(Debug, Clone, PartialEq)]
pub enum Net {
    /// Affine layers of sizes `dims[0] -> dims[1] -> ... -> dims[last]`, the activation after
    /// every hidden layer, none after the last.
    Mlp {
        dims: Vec<usize>,
        activation: Activation,
    },
    /// The Dirac-GAN generator: outputs theta (`1 x dim`) for every latent row.
    Constant { dim: usize, init: f64 },
    /// The Dirac-GAN discriminator: D(x) = x psi, psi `dim x 1`, no bias.
    Linear { dim: usize, init: f64 },
    /// The skip-GAN's generator, x = P(z) + alpha G(z) (see [`SkipNet`]).
    Skip(Box<SkipNet>),
    /// A DCGAN generator or discriminator (see [`dcgan`]).
    Dcgan(Box<dcgan::Dcgan>),
    /// EBGAN's auto-encoder discriminator (see [`ebgan`]): rows `[energy, code]`.
    Ebgan(Box<ebgan::Ebgan>),
}

/// The skip-GAN's generator (SPEC section 3.4): x = P(z) + alpha G(z), the skip connection
/// carrying the prior model's output around the generator G.
///
/// Parameters: G's, then `skip.alpha` (`1 x 1`) when alpha is learned, then P's (`prior.*`)
/// when P is fine-tuned; a frozen P's values are constants of the forward pass.
#[derive(Debug, Clone, PartialEq)]
pub struct SkipNet {
    pub generator: Net,
    /// The fitted prior model; `None` is P(z) = 0.
    pub prior: Option<Arc<FittedPrior>>,
    /// alpha, or its initial value when learned.
    pub alpha: f64,
    pub learn_alpha: bool,
    pub fine_tune: bool,
}

impl SkipNet {
    /// P(z) for a frozen P: its values as constants, applied to the latent rows flattened to
    /// rank 2 (probes stack copies of the parameters, not of P).
    fn frozen_prior<B: NetOps, const D: usize>(
        prior: &FittedPrior,
        z: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let dims = z.dims();
        let rows: usize = dims[..D - 1].iter().product();
        let flat: Tensor<B, 2> = z.reshape([rows, dims[D - 1]]);
        let device = flat.device();
        let constants: Vec<Tensor<B, 2>> = prior
            .form
            .param_specs()
            .iter()
            .zip(&prior.values)
            .map(|(s, v)| {
                crate::backend::matrix_in::<B>(v.clone(), s.rows, s.cols, &device, flat.dtype())
            })
            .collect();
        let mut out = dims;
        out[D - 1] = prior.form.out_dim();
        prior.apply(&constants, flat).reshape(out)
    }
}

impl Net {
    /// The generator a configuration names, mapping `z_dim` to `x_dim` (images of `image` for
    /// a DCGAN; validation makes sure image data comes with one).
    pub fn generator(
        cfg: &GeneratorConfig,
        z_dim: usize,
        x_dim: usize,
        image: Option<ImageShape>,
    ) -> Net {
        match cfg {
            GeneratorConfig::Dcgan(c) => Net::Dcgan(Box::new(dcgan::Dcgan {
                role: dcgan::Role::Generator { z_dim },
                image: image.unwrap_or(ImageShape {
                    channels: 1,
                    size: x_dim,
                }),
                width: c.width,
                norm: c.norm,
            })),
            GeneratorConfig::Mlp(m) => Net::Mlp {
                dims: mlp_dims(z_dim, m.width, m.depth, x_dim),
                activation: m.activation,
            },
            GeneratorConfig::Dirac(s) => Net::Constant {
                dim: x_dim,
                init: s.init,
            },
        }
    }

    /// The discriminator a configuration names, mapping `x_dim` to one score (images of
    /// `image` for a DCGAN).
    pub fn discriminator(
        cfg: &DiscriminatorConfig,
        x_dim: usize,
        image: Option<ImageShape>,
    ) -> Net {
        match cfg {
            DiscriminatorConfig::Ebgan(c) => {
                let (encoder, decoder) = match image {
                    Some(image) => {
                        let half = |role| {
                            Net::Dcgan(Box::new(dcgan::Dcgan {
                                role,
                                image,
                                width: c.width,
                                norm: c.norm,
                            }))
                        };
                        (
                            half(dcgan::Role::Discriminator {
                                outputs: c.code_dim,
                            }),
                            half(dcgan::Role::Generator { z_dim: c.code_dim }),
                        )
                    }
                    None => (
                        Net::Mlp {
                            dims: mlp_dims(x_dim, c.width, c.depth, c.code_dim),
                            activation: c.activation,
                        },
                        Net::Mlp {
                            dims: mlp_dims(c.code_dim, c.width, c.depth, x_dim),
                            activation: c.activation,
                        },
                    ),
                };
                Net::Ebgan(Box::new(ebgan::Ebgan { encoder, decoder }))
            }
            DiscriminatorConfig::Dcgan(c) => Net::Dcgan(Box::new(dcgan::Dcgan {
                role: dcgan::Role::Discriminator { outputs: 1 },
                image: image.unwrap_or(ImageShape {
                    channels: 1,
                    size: x_dim,
                }),
                width: c.width,
                norm: c.norm,
            })),
            DiscriminatorConfig::Mlp(m) => Net::Mlp {
                dims: mlp_dims(x_dim, m.width, m.depth, 1),
                activation: m.activation,
            },
            DiscriminatorConfig::Linear(s) => Net::Linear {
                dim: x_dim,
                init: s.init,
            },
        }
    }

    /// Whether an output row depends on the other rows of its batch (batch normalisation).
    pub fn batch_statistics(&self) -> bool {
        match self {
            Net::Dcgan(d) => d.norm == crate::spec::Norm::Batch,
            Net::Ebgan(e) => e.encoder.batch_statistics() || e.decoder.batch_statistics(),
            Net::Skip(s) => s.generator.batch_statistics(),
            Net::Mlp { .. } | Net::Constant { .. } | Net::Linear { .. } => false,
        }
    }

    /// Parameter tensors, in the order `forward` takes them.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let spec = |name: String, rows, cols| ParamSpec { name, rows, cols };
        match self {
            Net::Mlp { dims, .. } => dims
                .windows(2)
                .enumerate()
                .flat_map(|(i, w)| {
                    [
                        spec(format!("l{i}.w"), w[0], w[1]),
                        spec(format!("l{i}.b"), 1, w[1]),
                    ]
                })
                .collect(),
            Net::Constant { dim, .. } => vec![spec("theta".into(), 1, *dim)],
            Net::Linear { dim, .. } => vec![spec("psi".into(), *dim, 1)],
            Net::Skip(s) => {
                let mut v = s.generator.param_specs();
                if s.learn_alpha {
                    v.push(spec("skip.alpha".into(), 1, 1));
                }
                if let (true, Some(p)) = (s.fine_tune, &s.prior) {
                    v.extend(p.form.param_specs());
                }
                v
            }
            Net::Dcgan(d) => d.param_specs(),
            Net::Ebgan(e) => e.param_specs(),
        }
    }

    /// Width of the output rows.
    pub fn out_dim(&self) -> usize {
        match self {
            Net::Mlp { dims, .. } => *dims.last().expect("an MLP has an output layer"),
            Net::Constant { dim, .. } => *dim,
            Net::Linear { .. } => 1,
            Net::Skip(s) => s.generator.out_dim(),
            Net::Dcgan(d) => d.out_dim(),
            Net::Ebgan(e) => e.out_dim(),
        }
    }

    /// Initial values, row-major per tensor. MLPs follow PyTorch's default for linear layers:
    /// weights and biases uniform in +-1/sqrt(fan_in).
    pub fn init<R: Rng>(&self, rng: &mut R) -> Vec<Vec<f64>> {
        match self {
            Net::Mlp { .. } => self
                .param_specs()
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    // Weights and biases of a layer share its fan-in.
                    let fan_in = if i % 2 == 0 {
                        p.rows
                    } else {
                        self.param_specs()[i - 1].rows
                    };
                    let bound = 1.0 / (fan_in as f64).sqrt();
                    (0..p.len())
                        .map(|_| rng.random_range(-bound..bound))
                        .collect()
                })
                .collect(),
            Net::Constant { dim, init } | Net::Linear { dim, init } => vec![vec![*init; *dim]],
            // G first, from the same stream as the plain GAN's G: the same seed gives the
            // skip-GAN and the plain GAN the same initial generator.
            Net::Skip(s) => {
                let mut v = s.generator.init(rng);
                if s.learn_alpha {
                    v.push(vec![s.alpha]);
                }
                if let (true, Some(p)) = (s.fine_tune, &s.prior) {
                    v.extend(p.values.iter().cloned());
                }
                v
            }
            Net::Dcgan(d) => d.init(rng),
            Net::Ebgan(e) => e.init(rng),
        }
    }

    /// Output for a batch of rows `[.., rows, features]`. Rank 2 is one player; a probe stacks
    /// copies of the parameters along a leading dimension (rank 3, one batch of rows per copy)
    /// to get many Jacobian products from one graph.
    pub fn forward<B: NetOps, const D: usize>(
        &self,
        params: &[Tensor<B, D>],
        x: Tensor<B, D>,
    ) -> Tensor<B, D> {
        match self {
            Net::Mlp { activation, .. } => {
                let layers = params.len() / 2;
                let mut h = x;
                for (i, wb) in params.chunks(2).enumerate() {
                    h = crate::net_ops::matmul(h, wb[0].clone());
                    h = if D > 2 && B::REPEAT_BIAS {
                        // Stacked copies: the bias rows repeated to h's shape where the backend
                        // adds a broadcast slowly (see `NetOps::REPEAT_BIAS`).
                        let rows = h.dims()[D - 2];
                        h + wb[1].clone().repeat_dim(D - 2, rows)
                    } else {
                        h + wb[1].clone()
                    };
                    if i + 1 < layers {
                        h = activate(h, *activation);
                    }
                }
                h
            }
            Net::Constant { .. } => {
                let mut shape = x.dims();
                shape[D - 1] = 1;
                // In x's own float type (see `backend::float_options`).
                Tensor::ones(shape, (&x.device(), x.dtype())).matmul(params[0].clone())
            }
            Net::Linear { .. } => x.matmul(params[0].clone()),
            Net::Skip(s) => {
                let ng = s.generator.param_specs().len();
                let mut out = s.generator.forward(&params[..ng], x.clone());
                if s.learn_alpha {
                    out = out * params[ng].clone();
                } else if s.alpha != 1.0 {
                    out = out.mul_scalar(s.alpha);
                }
                match &s.prior {
                    None => out,
                    Some(p) if s.fine_tune => {
                        let first = ng + usize::from(s.learn_alpha);
                        p.apply(&params[first..], x) + out
                    }
                    Some(p) => SkipNet::frozen_prior(p, x) + out,
                }
            }
            Net::Dcgan(d) => d.forward(params, x),
            Net::Ebgan(e) => e.forward(params, x),
        }
    }
}

fn mlp_dims(input: usize, width: usize, depth: usize, output: usize) -> Vec<usize> {
    let mut dims = vec![input];
    dims.extend(std::iter::repeat_n(width, depth));
    dims.push(output);
    dims
}

fn activate<B: NetOps, const D: usize>(h: Tensor<B, D>, a: Activation) -> Tensor<B, D> {
    match a {
        Activation::Relu => activation::relu(h),
        Activation::LeakyRelu => activation::leaky_relu(h, 0.2),
        Activation::Tanh => crate::net_ops::tanh(h),
        Activation::Elu => activation::elu(h, 1.0),
        // burn 0.21's default sigmoid rounds through f32 even for f64 tensors (seen as a 7e-4
        // finite-difference mismatch); exp(log_sigmoid) keeps f64 and stays stable.
        Activation::Sigmoid => activation::log_sigmoid(h).exp(),
    }
}

/// A player: its architecture and current parameter values (plain tensors, no graph).
#[derive(Debug, Clone)]
pub struct Player<B: Backend> {
    pub net: Net,
    pub specs: Vec<ParamSpec>,
    pub params: Vec<Tensor<B, 2>>,
}

impl<B: Backend> Player<B> {
    /// A player with the given values (one vector per parameter tensor).
    pub fn new(net: Net, values: Vec<Vec<f64>>, device: &B::Device) -> Player<B> {
        let specs = net.param_specs();
        let params = specs
            .iter()
            .zip(values)
            .map(|(s, v)| matrix::<B>(v, s.rows, s.cols, device))
            .collect();
        Player { net, specs, params }
    }

    /// A player initialised from `rng`.
    pub fn init<R: Rng>(net: Net, rng: &mut R, device: &B::Device) -> Player<B> {
        let values = net.init(rng);
        Player::new(net, values, device)
    }

    /// Number of scalar parameters.
    pub fn num_params(&self) -> usize {
        self.specs.iter().map(ParamSpec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{host, CPU};
    use burn::backend::NdArray;
    use burn::tensor::DType;

    #[test]
    fn the_constant_generator_computes_in_its_inputs_precision() {
        // After an f32 tensor fixed the shared NdArray device's default type (see
        // `backend::float_options`), f64 rows still give f64 outputs.
        let _ = matrix::<NdArray<f32>>(vec![0.1], 1, 1, &CPU);
        let x = matrix::<NdArray<f64>>(vec![1.0, 2.0], 2, 1, &CPU);
        let theta = matrix::<NdArray<f64>>(vec![0.1], 1, 1, &CPU);
        let g = Net::Constant { dim: 1, init: 0.0 }.forward(&[theta], x);
        assert_eq!(g.dtype(), DType::F64);
        assert_eq!(host(g), [0.1, 0.1]);
    }

    #[test]
    fn the_skip_generator_adds_the_prior_models_output_to_alpha_g() {
        use crate::prior::{FitReport, FittedPrior, PriorForm};
        type B = NdArray<f64>;
        let g = Net::Mlp {
            dims: vec![2, 3, 2],
            activation: Activation::Tanh,
        };
        let g_values = g.init(&mut crate::rng::stream(
            1,
            crate::rng::Stream::InitGenerator,
        ));
        let z = || matrix::<B>(vec![0.3, -1.2, 0.7, 0.1, -0.4, 2.0], 3, 2, &CPU);
        let g_out = host(
            Player::<B>::new(g.clone(), g_values.clone(), &CPU)
                .net
                .forward(
                    &Player::<B>::new(g.clone(), g_values.clone(), &CPU).params,
                    z(),
                ),
        );
        // P(z) = mean + z[..1] w with mean (1, -2) and w (0.5, 0.25).
        let prior = Arc::new(FittedPrior {
            form: PriorForm::PcaGaussian { k: 1, dim: 2 },
            values: vec![vec![1.0, -2.0], vec![0.5, 0.25]],
            report: FitReport::default(),
            standardise: None,
        });
        let zs = [0.3, 0.7, -0.4];
        for (learn_alpha, fine_tune) in [(false, false), (true, false), (false, true), (true, true)]
        {
            let net = Net::Skip(Box::new(SkipNet {
                generator: g.clone(),
                prior: Some(prior.clone()),
                alpha: 0.5,
                learn_alpha,
                fine_tune,
            }));
            let values = net.init(&mut crate::rng::stream(
                1,
                crate::rng::Stream::InitGenerator,
            ));
            assert_eq!(
                values[..g_values.len()],
                g_values[..],
                "G starts as the plain GAN's"
            );
            assert_eq!(
                values.len(),
                4 + usize::from(learn_alpha) + 2 * usize::from(fine_tune)
            );
            let p = Player::<B>::new(net.clone(), values, &CPU);
            let x = host(net.forward(&p.params, z()));
            for r in 0..3 {
                let want = [1.0 + 0.5 * zs[r], -2.0 + 0.25 * zs[r]];
                for c in 0..2 {
                    let w = want[c] + 0.5 * g_out[2 * r + c];
                    assert!(
                        (x[2 * r + c] - w).abs() < 1e-14,
                        "{learn_alpha} {fine_tune}: {x:?}"
                    );
                }
            }
        }
        // No prior model and alpha fixed at 1: exactly G.
        let net = Net::Skip(Box::new(SkipNet {
            generator: g.clone(),
            prior: None,
            alpha: 1.0,
            learn_alpha: false,
            fine_tune: false,
        }));
        let p = Player::<B>::new(net.clone(), g_values, &CPU);
        assert_eq!(host(net.forward(&p.params, z())), g_out);
    }
}
