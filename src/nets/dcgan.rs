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
//! Maps are channels-last pixel rows (`[maps side side, channels]`) so that on burn-flex each
//! convolution is a gather and one matrix product (`conv.rs`; other backends convert them for
//! burn's `conv2d`); parameters, images and generated rows keep the channels-first layout of
//! burn's and PyTorch's NCHW convolutions.
//!
//! Copies: a probe stacks copies of the parameters on a leading dimension (`[copies, n,
//! features]` rows, `[copies, rows, cols]` parameters). Maps put the copies first (`[copies n,
//! side, side, channels]`), the convolutions multiply each copy's rows by its own weights, and
//! batch norm keeps each copy's statistics to its own rows.
//! Copies never mix.

use burn::tensor::{activation, Tensor};
use rand::Rng;
use rand_distr::{Distribution, StandardNormal};

use super::conv::{self, rearrange, Maps};
use super::ParamSpec;
use crate::data::images::ImageShape;
use crate::net_ops::NetOps;
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
    pub fn forward<B: NetOps, const D: usize>(
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

    fn generate<B: NetOps>(
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
        let c0 = self.channels(0);
        // The projection's columns are stored channels first; taken pixel by pixel, its
        // output rows are already channels-last maps.
        let pixels_first = |t: Tensor<B, 3>| {
            let dims = t.dims();
            let pixels = b * b;
            rearrange(t, dims, "projection", &[c0, pixels], |i| {
                let (col, row) = (i % (c0 * pixels), i / (c0 * pixels));
                let (ci, pixel) = (col % c0, col / c0);
                row * c0 * pixels + ci * pixels + pixel
            })
        };
        let (w, bias) = (pixels_first(next()), pixels_first(next()));
        let mut h = Maps {
            rows: affine(z, w, bias).reshape([copies * n * b * b, c0]),
            maps: copies * n,
            side: b,
        };
        if self.normed() {
            h.rows = self.normalise(h.rows, next(), next(), copies, n);
        }
        h.rows = activation::relu(h.rows);
        for _ in 1..self.halvings() {
            let w = next();
            let bias = (!self.normed()).then(&mut next);
            h = conv::up(h, w, bias);
            if self.normed() {
                h.rows = self.normalise(h.rows, next(), next(), copies, n);
            }
            h.rows = activation::relu(h.rows);
        }
        let (w, bias) = (next(), next());
        h = conv::up(h, w, Some(bias));
        h.rows = crate::net_ops::tanh(h.rows);
        to_image_rows(h, copies, n)
    }

    fn discriminate<B: NetOps>(
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
            let w = next();
            let plain = i == 0 || !self.normed();
            let bias = plain.then(&mut next);
            h = conv::down(h, w, bias);
            if !plain {
                h.rows = self.normalise(h.rows, next(), next(), copies, n);
            }
            h.rows = activation::leaky_relu(h.rows, LEAK);
        }
        // The last layer's rows are stored channels first; taken pixel by pixel they read
        // the channels-last maps as they are.
        let c = h.rows.dims()[1];
        let pixels = h.side * h.side;
        let w = next();
        let dims = w.dims();
        let outputs = dims[2];
        let w = rearrange(w, dims, "last layer", &[c, pixels], |i| {
            let (o, row) = (i % outputs, i / outputs);
            let (within, k) = (row % (c * pixels), row / (c * pixels));
            let (ci, pixel) = (within % c, within / c);
            (k * c * pixels + ci * pixels + pixel) * outputs + o
        });
        let rows = h.rows.reshape([copies, n, pixels * c]);
        affine(rows, w, next())
    }

    /// Batch or layer norm of pixel rows `[copies n s s, c]`, then the per-channel scale and
    /// shift (`[copies, 1, c]`). One copy (training) as 2-D rows: burn-flex broadcasts 2-D
    /// operands row by row but walks 3-D broadcasts element by element.
    fn normalise<B: NetOps>(
        &self,
        rows: Tensor<B, 2>,
        scale: Tensor<B, 3>,
        shift: Tensor<B, 3>,
        copies: usize,
        n: usize,
    ) -> Tensor<B, 2> {
        let dims = rows.dims();
        let [all, c] = dims;
        let per_copy = all / copies;
        // Layer norm's view: a row per sample, all its pixels and channels.
        let per_sample = per_copy / n * c;
        if copies == 1 {
            let normed = self.normalise_rows(rows, [n, per_sample]);
            return normed * scale.reshape([1, c]) + shift.reshape([1, c]);
        }
        let rows: Tensor<B, 3> = rows.reshape([copies, per_copy, c]);
        let normed = self.normalise_rows(rows, [copies, n, per_sample]);
        (normed * scale + shift).reshape(dims)
    }

    /// Rows `[.., pixels, c]` (every pixel of every sample of a copy) normalised per channel
    /// over the copy's rows (batch norm), or per sample over its `samples` view `[.., n,
    /// pixels c]` (layer norm: all its channels and pixels, the critic normalisation of
    /// Gulrajani et al.'s WGAN-GP code).
    fn normalise_rows<B: NetOps, const D: usize>(
        &self,
        rows: Tensor<B, D>,
        samples: [usize; D],
    ) -> Tensor<B, D> {
        let over = |t: Tensor<B, D>, dim: usize| -> Tensor<B, D> {
            let centred = t.clone() - t.mean_dim(dim);
            let var = centred.clone().powi_scalar(2).mean_dim(dim);
            centred * var.add_scalar(EPS).sqrt().recip()
        };
        match self.norm {
            Norm::Batch => over(rows, D - 2),
            Norm::Layer => {
                let dims = rows.dims();
                over(rows.reshape(samples), D - 1).reshape(dims)
            }
            Norm::None => rows,
        }
    }
}

/// Rows `x [copies, n, in]` times `w [copies, in, out]` plus `b [copies, 1, out]`; one copy as
/// 2-D tensors (a 3-D broadcast of the bias is element by element in burn-flex).
fn affine<B: NetOps>(x: Tensor<B, 3>, w: Tensor<B, 3>, b: Tensor<B, 3>) -> Tensor<B, 3> {
    let [copies, n, input] = x.dims();
    let out = w.dims()[2];
    if copies == 1 {
        let y = x.reshape([n, input]).matmul(w.reshape([input, out])) + b.reshape([1, out]);
        return y.reshape([1, n, out]);
    }
    x.matmul(w) + b
}

/// Image rows `[copies, n, c s s]` (channels first, as images are stored) as pixel rows.
fn to_maps<B: NetOps>(x: Tensor<B, 3>, c: usize, side: usize) -> Maps<B> {
    let [copies, n, len] = x.dims();
    let pixels = side * side;
    let channels_last = if c == 1 {
        x
    } else {
        rearrange(x, [copies, n, len], "channels last", &[c, pixels], |i| {
            let (within, sample) = (i % len, i / len);
            let (ci, pixel) = (within % c, within / c);
            sample * len + ci * pixels + pixel
        })
    };
    Maps {
        rows: channels_last.reshape([copies * n * pixels, c]),
        maps: copies * n,
        side,
    }
}

/// Pixel rows as image rows `[copies, n, c s s]`, channels first.
fn to_image_rows<B: NetOps>(h: Maps<B>, copies: usize, n: usize) -> Tensor<B, 3> {
    let c = h.rows.dims()[1];
    let pixels = h.side * h.side;
    let len = c * pixels;
    let rows = h.rows.reshape([copies, n, len]);
    if c == 1 {
        return rows;
    }
    rearrange(
        rows,
        [copies, n, len],
        "channels first",
        &[c, pixels],
        |i| {
            let (within, sample) = (i % len, i / len);
            let (pixel, ci) = (within % pixels, within / pixels);
            sample * len + pixel * c + ci
        },
    )
}
