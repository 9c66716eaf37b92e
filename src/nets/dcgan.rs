//! DCGAN players (Radford et al. 2016) for square images, grey or colour.
//!
//! The generator projects z linearly to `c0 x b x b` (b the base side: the image side halved
//! while it stays even and at least 4, so 7 for 28, 4 for 32 and 64), then doubles the side
//! with 4x4 transposed convolutions of stride 2 (batch norm or layer norm or none, ReLU),
//! halving the channels down to `width`, and ends with a transposed convolution to the image's
//! channels and tanh. The discriminator mirrors it: 4x4 convolutions of stride 2 with leaky
//! ReLU (0.2), `width` channels first (never normalised, as in the paper), doubling, then a
//! linear map of the last feature map to one score. Hidden layers followed by a normalisation
//! have no bias (the normalisation's shift replaces it).
//!
//! Batch norm always uses the statistics of the batch it is given (no running averages, so a
//! trial's numbers do not depend on evaluation history); layer norm normalises each sample over
//! all its channels and pixels and scales and shifts per channel (the critic normalisation of
//! Gulrajani et al.'s WGAN-GP code). Both are written from mean/var tensor ops, which nested
//! autodiff differentiates exactly (SPEC section 5).
//!
//! Copies: a probe stacks copies of the parameters on a leading dimension (`[copies, n,
//! features]` rows, `[copies, rows, cols]` parameters). Convolutions run them as groups: the
//! copies' channels sit side by side (`[n, copies x channels, side, side]`) and a grouped
//! convolution keeps each copy to its own weights, as batch norm keeps each channel to itself.
//! Copies never mix.

use burn::tensor::module::{conv2d, conv_transpose2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{activation, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::ParamSpec;
use crate::activation::Activations;
use crate::data::images::ImageShape;
use crate::spec::Norm;

const KERNEL: usize = 4;
/// Batch and layer norm's epsilon (PyTorch's default).
const EPS: f64 = 1e-5;
const LEAK: f64 = 0.2;

/// Which player a DCGAN is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Generator {
        z_dim: usize,
    },
    /// `outputs` scores per row (1 for a discriminator; EBGAN's encoder outputs its code).
    Discriminator {
        outputs: usize,
    },
}

/// A DCGAN generator or discriminator for images of `image`.
#[derive(Debug, Clone, PartialEq)]
pub struct Dcgan {
    pub role: Role,
    pub image: ImageShape,
    /// Channels of the layer next to the image.
    pub width: usize,
    pub norm: Norm,
}

/// The image side halved while it stays even and at least 4: (base side, halvings). Sizes
/// with no halving (odd, or under 8) have none and are refused by validation.
pub fn base_side(size: usize) -> (usize, usize) {
    let (mut b, mut k) = (size, 0);
    while b % 2 == 0 && b / 2 >= 4 {
        b /= 2;
        k += 1;
    }
    (b, k)
}

impl Dcgan {
    fn halvings(&self) -> usize {
        base_side(self.image.size).1
    }

    fn base(&self) -> usize {
        base_side(self.image.size).0
    }

    /// Channels of hidden layer `i` (0 at the base side, `halvings - 1` next to the image).
    fn channels(&self, i: usize) -> usize {
        self.width << (self.halvings() - 1 - i)
    }

    fn normed(&self) -> bool {
        self.norm != Norm::None
    }

    /// Parameter tensors in forward order. Convolution weights are stored flat as `rows x
    /// cols` = `in x (out 4 4)` for transposed convolutions (burn's `[in, out, 4, 4]`) and
    /// `out x (in 4 4)` for convolutions (`[out, in, 4, 4]`); biases and norm scales `1 x c`.
    pub fn param_specs(&self) -> Vec<ParamSpec> {
        let spec = |name: String, rows, cols| ParamSpec { name, rows, cols };
        let k2 = KERNEL * KERNEL;
        let k = self.halvings();
        let b = self.base();
        let mut v = Vec::new();
        let norm = |v: &mut Vec<ParamSpec>, layer: &str, c: usize| {
            if self.normed() {
                v.push(spec(format!("{layer}.scale"), 1, c));
                v.push(spec(format!("{layer}.shift"), 1, c));
            }
        };
        match self.role {
            Role::Generator { z_dim } => {
                let c0 = self.channels(0);
                v.push(spec("proj.w".into(), z_dim, c0 * b * b));
                v.push(spec("proj.b".into(), 1, c0 * b * b));
                norm(&mut v, "proj", c0);
                for i in 1..k {
                    let name = format!("up{i}");
                    v.push(spec(
                        format!("{name}.w"),
                        self.channels(i - 1),
                        self.channels(i) * k2,
                    ));
                    if !self.normed() {
                        v.push(spec(format!("{name}.b"), 1, self.channels(i)));
                    }
                    norm(&mut v, &name, self.channels(i));
                }
                v.push(spec(
                    "out.w".into(),
                    self.channels(k - 1),
                    self.image.channels * k2,
                ));
                v.push(spec("out.b".into(), 1, self.image.channels));
            }
            Role::Discriminator { outputs } => {
                // Layer i maps channels(k - i) (the image's for i = 0) to width << i.
                let mut c_in = self.image.channels;
                for i in 0..k {
                    let c = self.width << i;
                    let name = format!("down{i}");
                    v.push(spec(format!("{name}.w"), c, c_in * k2));
                    if i == 0 || !self.normed() {
                        v.push(spec(format!("{name}.b"), 1, c));
                    } else {
                        norm(&mut v, &name, c);
                    }
                    c_in = c;
                }
                v.push(spec("out.w".into(), c_in * b * b, outputs));
                v.push(spec("out.b".into(), 1, outputs));
            }
        }
        v
    }

    /// Width of the output rows.
    pub fn out_dim(&self) -> usize {
        match self.role {
            Role::Generator { .. } => self.image.len(),
            Role::Discriminator { outputs } => outputs,
        }
    }

    /// DCGAN's initialisation: weights N(0, 0.02), norm scales N(1, 0.02), biases and shifts 0.
    pub fn init<R: Rng>(&self, rng: &mut R) -> Vec<Vec<f64>> {
        self.param_specs()
            .iter()
            .map(|s| {
                let draw = |rng: &mut R, mean: f64| -> Vec<f64> {
                    (0..s.len())
                        .map(|_| {
                            let e: f64 = StandardNormal.sample(rng);
                            mean + 0.02 * e
                        })
                        .collect()
                };
                if s.name.ends_with(".w") {
                    draw(rng, 0.0)
                } else if s.name.ends_with(".scale") {
                    draw(rng, 1.0)
                } else {
                    vec![0.0; s.len()]
                }
            })
            .collect()
    }

    /// Output rows `[.., n, out]` for input rows `[.., n, in]` (latent rows for the generator,
    /// image rows for the discriminator); see the module's note on copies.
    pub fn forward<B: Activations, const D: usize>(
        &self,
        params: &[Tensor<B, D>],
        x: Tensor<B, D>,
    ) -> Tensor<B, D> {
        let dims = x.dims();
        let n = dims[D - 2];
        let copies: usize = dims[..D - 2].iter().product();
        let x3: Tensor<B, 3> = x.reshape([copies, n, dims[D - 1]]);
        let p: Vec<Tensor<B, 3>> = params
            .iter()
            .map(|t| {
                let d = t.dims();
                t.clone().reshape([copies, d[D - 2], d[D - 1]])
            })
            .collect();
        let out = match self.role {
            Role::Generator { .. } => self.generate(&p, x3, copies, n),
            Role::Discriminator { .. } => self.discriminate(&p, x3, copies, n),
        };
        let mut out_dims = dims;
        out_dims[D - 1] = self.out_dim();
        out.reshape(out_dims)
    }

    fn generate<B: Activations>(
        &self,
        p: &[Tensor<B, 3>],
        z: Tensor<B, 3>,
        copies: usize,
        n: usize,
    ) -> Tensor<B, 3> {
        let b = self.base();
        let mut at = 0;
        let mut next = || {
            at += 1;
            p[at - 1].clone()
        };
        let (w, bias) = (next(), next());
        let c0 = self.channels(0);
        let mut h = to_maps(affine(z, w, bias), c0, b);
        if self.normed() {
            h = self.normalise(h, next(), next(), copies);
        }
        h = activation::relu(h);
        let k = self.halvings();
        for i in 1..k {
            let w = next();
            let bias = (!self.normed()).then(&mut next);
            h = up(h, w, bias, copies, self.channels(i));
            if self.normed() {
                h = self.normalise(h, next(), next(), copies);
            }
            h = activation::relu(h);
        }
        let (w, bias) = (next(), next());
        h = up(h, w, Some(bias), copies, self.image.channels);
        from_maps(crate::activation::tanh(h), copies, n)
    }

    fn discriminate<B: Activations>(
        &self,
        p: &[Tensor<B, 3>],
        x: Tensor<B, 3>,
        copies: usize,
        n: usize,
    ) -> Tensor<B, 3> {
        let mut at = 0;
        let mut next = || {
            at += 1;
            p[at - 1].clone()
        };
        let mut h = to_maps(x, self.image.channels, self.image.size);
        for i in 0..self.halvings() {
            let c = self.width << i;
            let w = next();
            let plain = i == 0 || !self.normed();
            let bias = plain.then(&mut next);
            h = down(h, w, bias, copies, c);
            if !plain {
                h = self.normalise(h, next(), next(), copies);
            }
            h = activation::leaky_relu(h, LEAK);
        }
        let (w, bias) = (next(), next());
        affine(from_maps(h, copies, n), w, bias)
    }

    /// Batch or layer norm of maps `[n, copies c, s, s]`, then the per-channel scale and shift
    /// (`[copies, 1, c]`). Written on 2-D views (`[n, channels pixels]`, `[channels, pixels]`):
    /// burn-flex broadcasts 2-D operands row by row but walks 4-D broadcasts element by
    /// element, which made these few operations most of a DCGAN step.
    fn normalise<B: Activations>(
        &self,
        h: Tensor<B, 4>,
        scale: Tensor<B, 3>,
        shift: Tensor<B, 3>,
        copies: usize,
    ) -> Tensor<B, 4> {
        let [n, channels, s1, s2] = h.dims();
        let pixels = s1 * s2;
        let flat: Tensor<B, 2> = h.reshape([n, channels * pixels]);
        let ones: Tensor<B, 2> = Tensor::ones([1, pixels], (&flat.device(), flat.dtype()));
        // A per-channel column `[channels, 1]` as a row `[1, channels pixels]` over the pixels.
        let spread = |v: Tensor<B, 2>| -> Tensor<B, 2> {
            (v * ones.clone()).reshape([1, channels * pixels])
        };
        // Mean over the rows, then over each channel's pixels: `[channels, 1]`.
        let per_channel = |t: Tensor<B, 2>| -> Tensor<B, 2> {
            t.mean_dim(0).reshape([channels, pixels]).mean_dim(1)
        };
        let normed = match self.norm {
            Norm::Batch => {
                let centred = flat.clone() - spread(per_channel(flat));
                let var = per_channel(centred.clone().powi_scalar(2));
                centred * spread(var.add_scalar(EPS).sqrt().recip())
            }
            Norm::Layer => {
                // Each sample of each copy over its channels and pixels.
                let per = channels / copies * pixels;
                let rows: Tensor<B, 2> = flat.reshape([n * copies, per]);
                let centred = rows.clone() - rows.mean_dim(1);
                let var = centred.clone().powi_scalar(2).mean_dim(1);
                (centred * var.add_scalar(EPS).sqrt().recip()).reshape([n, channels * pixels])
            }
            Norm::None => return flat.reshape([n, channels, s1, s2]),
        };
        let column = |t: Tensor<B, 3>| -> Tensor<B, 2> { t.reshape([channels, 1]) };
        (normed * spread(column(scale)) + spread(column(shift))).reshape([n, channels, s1, s2])
    }
}

/// Rows `x [copies, n, in]` times `w [copies, in, out]` plus `b [copies, 1, out]`; one copy as
/// 2-D tensors (a 3-D broadcast of the bias is element by element in burn-flex).
fn affine<B: Activations>(x: Tensor<B, 3>, w: Tensor<B, 3>, b: Tensor<B, 3>) -> Tensor<B, 3> {
    let [copies, n, input] = x.dims();
    let out = w.dims()[2];
    if copies == 1 {
        let y = x.reshape([n, input]).matmul(w.reshape([input, out])) + b.reshape([1, out]);
        return y.reshape([1, n, out]);
    }
    x.matmul(w) + b
}

/// Rows `[copies, n, c s s]` as maps `[n, copies c, s, s]`.
fn to_maps<B: Activations>(x: Tensor<B, 3>, c: usize, s: usize) -> Tensor<B, 4> {
    let [copies, n, _] = x.dims();
    // One copy (training) needs no transpose; a strided copy is a large part of a step.
    if copies == 1 {
        return x.reshape([n, c, s, s]);
    }
    x.swap_dims(0, 1).reshape([n, copies * c, s, s])
}

/// Maps `[n, copies c, s, s]` as rows `[copies, n, c s s]`.
fn from_maps<B: Activations>(h: Tensor<B, 4>, copies: usize, n: usize) -> Tensor<B, 3> {
    let [_, channels, s1, s2] = h.dims();
    if copies == 1 {
        return h.reshape([1, n, channels * s1 * s2]);
    }
    h.reshape([n, copies, channels / copies * s1 * s2])
        .swap_dims(0, 1)
}

/// A per-copy bias `[copies, 1, c]` as the `[copies c]` vector a convolution adds.
fn flat_bias<B: Activations>(b: Tensor<B, 3>) -> Tensor<B, 1> {
    let [copies, _, c] = b.dims();
    b.reshape([copies * c])
}

/// 4x4 convolution of stride 2 and padding 1 (halves the side); `w` is `[copies, out, in 16]`.
fn down<B: Activations>(
    h: Tensor<B, 4>,
    w: Tensor<B, 3>,
    bias: Option<Tensor<B, 3>>,
    copies: usize,
    out: usize,
) -> Tensor<B, 4> {
    let c_in = h.dims()[1] / copies;
    let w = w.reshape([copies * out, c_in, KERNEL, KERNEL]);
    conv2d(
        h,
        w,
        bias.map(flat_bias),
        ConvOptions::new([2, 2], [1, 1], [1, 1], copies),
    )
}

/// 4x4 transposed convolution of stride 2 and padding 1 (doubles the side); `w` is
/// `[copies, in, out 16]`.
fn up<B: Activations>(
    h: Tensor<B, 4>,
    w: Tensor<B, 3>,
    bias: Option<Tensor<B, 3>>,
    copies: usize,
    out: usize,
) -> Tensor<B, 4> {
    let c_in = h.dims()[1] / copies;
    let w = w.reshape([copies * c_in, out, KERNEL, KERNEL]);
    conv_transpose2d(
        h,
        w,
        bias.map(flat_bias),
        ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], copies),
    )
}
