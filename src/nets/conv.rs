//! The DCGAN's two convolutions, 4x4 of stride 2 and padding 1 and its transpose, as row
//! gathers and one matrix product each, on channels-last maps held as pixel rows `[maps side
//! side, channels]`.
//!
//! burn-flex runs `conv2d` as im2col and gemm but takes the weight gradient through burn's
//! generic fallback (a convolution with batch and channels swapped, both copied first, whose
//! gemm has 16 rows); `perf` put a third of a DCGAN step there. Here a convolution gathers
//! each output pixel's inputs as whole channel rows (`select` on rows: a row copy in
//! burn-flex, a row-wise scatter-add backward) and multiplies them by the kernel in one
//! product; a transposed convolution multiplies each input pixel by the kernel and adds the
//! products into their output pixels (its adjoint). Each gradient is one well-shaped product.
//! Permuted views are avoided on purpose: burn-flex copies a layout that does not collapse to
//! two dimensions element by element. Nested autodiff differentiates gathers and products
//! twice like any other tensor expression.
//!
//! Out-of-image taps (the padding) read a zero row appended to the input rows.
//!
//! Copies (a probe's stacked parameters) lead the maps (`[copies n, ..]`) and the weights
//! (`[copies, ..]`): each copy's rows meet only its own weights in a batched product.

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;

use burn::tensor::module::{conv2d, conv_transpose2d};
use burn::tensor::ops::{ConvOptions, ConvTransposeOptions};
use burn::tensor::{IndexingUpdateOp, Int, Tensor, TensorData};

use crate::net_ops::NetOps;

/// Channels-last maps as pixel rows: row `(map, y, x)` holds the channels of one pixel.
pub struct Maps<B: NetOps> {
    pub rows: Tensor<B, 2>,
    pub maps: usize,
    pub side: usize,
}

// Index tensors by backend, device, what they index and the sizes that fix them. A DCGAN
// step makes the same gathers every time; building and converting their indices was 4 % of
// a step. Per thread (so no lock); emptied before it would hold more than
// `INDEX_CACHE_ELEMENTS` indices (a probe's many copies make large ones).
thread_local! {
    static INDEX_CACHE: RefCell<IndexCache> = RefCell::new(IndexCache::default());
}
type IndexKey = (TypeId, String, &'static str, Vec<usize>);
const INDEX_CACHE_ELEMENTS: usize = 1 << 25;

#[derive(Default)]
struct IndexCache {
    tensors: HashMap<IndexKey, Box<dyn Any>>,
    elements: usize,
}

/// The index tensor `build` makes for `what` at `sizes`, built once per thread.
fn cached_indices<B: NetOps, const D: usize>(
    what: &'static str,
    sizes: &[usize],
    device: &B::Device,
    build: impl FnOnce() -> (Vec<i64>, [usize; D]),
) -> Tensor<B, D, Int> {
    let key: IndexKey = (
        TypeId::of::<B>(),
        format!("{device:?}"),
        what,
        sizes.to_vec(),
    );
    let hit = INDEX_CACHE.with(|cache| {
        let cache = cache.borrow();
        let found = cache.tensors.get(&key)?;
        found.downcast_ref::<Tensor<B, D, Int>>().cloned()
    });
    if let Some(index) = hit {
        return index;
    }
    let (index, dims) = build();
    let len = index.len();
    let index = Tensor::<B, D, Int>::from_data(TensorData::new(index, dims), device);
    INDEX_CACHE.with(|cache| {
        let mut cache = cache.borrow_mut();
        if cache.elements + len > INDEX_CACHE_ELEMENTS {
            *cache = IndexCache::default();
        }
        cache.elements += len;
        cache.tensors.insert(key, Box::new(index.clone()));
    });
    index
}

/// `t` with its elements rearranged: element `i` of the result (row-major) is element
/// `source(i)` of `t`. One gather of single elements (a plain loop in both CPU backends,
/// where a permuted copy of more than two dimensions goes element by element through
/// burn-flex's strided iterator), for weights and image rows. `what` and `sizes` name the
/// rearrangement (with `dims`) for the index cache: `source` must depend on nothing else.
pub fn rearrange<B: NetOps, const D: usize>(
    t: Tensor<B, D>,
    dims: [usize; D],
    what: &'static str,
    sizes: &[usize],
    source: impl Fn(usize) -> usize,
) -> Tensor<B, D> {
    let len: usize = dims.iter().product();
    let flat: Tensor<B, 2> = t.reshape([1, len]);
    let key: Vec<usize> = sizes.iter().chain(&dims).copied().collect();
    let index = cached_indices(what, &key, &flat.device(), || {
        ((0..len).map(|i| source(i) as i64).collect(), [1, len])
    });
    flat.gather(1, index).reshape(dims)
}

/// The rows of `x` with a zero row after them (the padding's row).
fn with_zero_row<B: NetOps>(x: Tensor<B, 2>) -> Tensor<B, 2> {
    let [_, c] = x.dims();
    let zero = Tensor::zeros([1, c], (&x.device(), x.dtype()));
    Tensor::cat(vec![x, zero], 0)
}

/// Rows `[groups rows, k]` times per-group matrices `[groups, k, out]`; one group as a 2-D
/// product (burn-flex broadcasts 3-D element by element).
fn grouped_product<B: NetOps>(rows: Tensor<B, 2>, w: Tensor<B, 3>) -> Tensor<B, 2> {
    let [groups, k, out] = w.dims();
    let n = rows.dims()[0];
    if groups == 1 {
        return rows.matmul(w.reshape([k, out]));
    }
    rows.reshape([groups, n / groups, k])
        .matmul(w)
        .reshape([n, out])
}

/// Rows `[copies rows, out]` plus a per-copy bias `[copies, 1, out]`.
fn add_bias<B: NetOps>(y: Tensor<B, 2>, bias: Option<Tensor<B, 3>>) -> Tensor<B, 2> {
    let Some(b) = bias else { return y };
    let [copies, _, out] = b.dims();
    let n = y.dims()[0];
    if copies == 1 {
        return y + b.reshape([1, out]);
    }
    let y: Tensor<B, 3> = y.reshape([copies, n / copies, out]);
    (y + b).reshape([n, out])
}

/// For each pixel `(map, p, q)` of maps of side `h` and each tap `(kh, kw)` of the 4x4 kernel,
/// the row of pixel `(2p + kh - 1, 2q + kw - 1)` in maps of side `2h`, or the row after them
/// where that pixel is padding. A convolution gathers these rows (side `2h` to `h`); a
/// transposed convolution adds its taps into them (`h` to `2h`).
fn tap_rows<B: NetOps>(maps: usize, h: usize, device: &B::Device) -> Tensor<B, 1, Int> {
    cached_indices("taps", &[maps, h], device, || {
        let side = 2 * h as i64;
        let padding = maps as i64 * side * side;
        let mut index = Vec::with_capacity(maps * h * h * 16);
        for map in 0..maps as i64 {
            for p in 0..h as i64 {
                for q in 0..h as i64 {
                    for kh in 0..4 {
                        for kw in 0..4 {
                            let (y, x) = (2 * p + kh - 1, 2 * q + kw - 1);
                            let inside = (0..side).contains(&y) && (0..side).contains(&x);
                            index.push(match inside {
                                true => (map * side + y) * side + x,
                                false => padding,
                            });
                        }
                    }
                }
            }
        }
        let len = index.len();
        (index, [len])
    })
}

/// `down` as one gather of each output pixel's 16 input pixels and one product.
fn down_by_products<B: NetOps>(x: Maps<B>, w: Tensor<B, 3>, bias: Option<Tensor<B, 3>>) -> Maps<B> {
    let Maps { rows, maps, side } = x;
    let c = rows.dims()[1];
    let device = rows.device();
    let [copies, out, _] = w.dims();
    let half = side / 2;
    let index = tap_rows::<B>(maps, half, &device);
    let cols = with_zero_row(rows)
        .select(0, index)
        .reshape([maps * half * half, 16 * c]);
    // [copies, out, c, kh, kw] as [copies, (kh, kw, c), out], matching the taps' order.
    let kernel = rearrange(w, [copies, 16 * c, out], "down kernel", &[], |i| {
        let (o, i) = (i % out, i / out);
        let (ci, i) = (i % c, i / c);
        let (tap, k) = (i % 16, i / 16);
        ((k * out + o) * c + ci) * 16 + tap
    });
    Maps {
        rows: add_bias(grouped_product(cols, kernel), bias),
        maps,
        side: half,
    }
}

/// `up` as the adjoint of `down_by_products`'s gather: each input pixel times the kernel
/// gives its 16 output taps (one product), which are added into their pixels. Gathering each
/// output pixel's four inputs instead would build and differentiate rows 16 times the
/// input's size.
fn up_by_products<B: NetOps>(x: Maps<B>, w: Tensor<B, 3>, bias: Option<Tensor<B, 3>>) -> Maps<B> {
    let Maps { rows, maps, side } = x;
    let device = rows.device();
    let c = rows.dims()[1];
    let [copies, _, cols] = w.dims();
    let out = cols / 16;
    let double = 2 * side;
    // Input pixel (map, i, j), tap (kh, kw): output pixel (2i + kh - 1, 2j + kw - 1), or the
    // row after the output (dropped) where that pixel is padding.
    let index = tap_rows::<B>(maps, side, &device);
    // [copies, c, out, kh, kw] as [copies, c, (kh, kw, out)], matching the taps' order.
    let kernel = rearrange(w, [copies, c, 16 * out], "up kernel", &[], |i| {
        let (o, i) = (i % out, i / out);
        let (tap, i) = (i % 16, i / 16);
        (i * out + o) * 16 + tap
    });
    let taps = grouped_product(rows, kernel).reshape([maps * side * side * 16, out]);
    let zeros = Tensor::zeros([maps * double * double + 1, out], (&device, taps.dtype()));
    let pixels = zeros
        .select_assign(0, index, taps, IndexingUpdateOp::Add)
        .slice([0..maps * double * double]);
    Maps {
        rows: add_bias(pixels, bias),
        maps,
        side: double,
    }
}

/// Convolution, 4x4, stride 2, padding 1: maps of side `2h` and `c` channels to side `h` and
/// `out` channels. `w` is `[copies, out, c 4 4]` (burn's `[out, c, kh, kw]` per copy), `bias`
/// `[copies, 1, out]`.
pub fn down<B: NetOps>(x: Maps<B>, w: Tensor<B, 3>, bias: Option<Tensor<B, 3>>) -> Maps<B> {
    if B::CONVOLUTIONS_AS_PRODUCTS {
        return down_by_products(x, w, bias);
    }
    let [copies, out, _] = w.dims();
    let c = x.rows.dims()[1];
    let w = w.reshape([copies * out, c, 4, 4]);
    let options = ConvOptions::new([2, 2], [1, 1], [1, 1], copies);
    from_grouped(
        conv2d(grouped(x, copies), w, bias.map(flat), options),
        copies,
    )
}

/// Transposed convolution, 4x4, stride 2, padding 1: maps of side `h` and `c` channels to
/// side `2h` and `out` channels. `w` is `[copies, c, out 4 4]` (burn's `[c, out, kh, kw]` per
/// copy), `bias` `[copies, 1, out]`.
pub fn up<B: NetOps>(x: Maps<B>, w: Tensor<B, 3>, bias: Option<Tensor<B, 3>>) -> Maps<B> {
    if B::CONVOLUTIONS_AS_PRODUCTS {
        return up_by_products(x, w, bias);
    }
    let [copies, c, cols] = w.dims();
    let w = w.reshape([copies * c, cols / 16, 4, 4]);
    let options = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], copies);
    let y = conv_transpose2d(grouped(x, copies), w, bias.map(flat), options);
    from_grouped(y, copies)
}

/// Pixel rows as burn's NCHW maps `[n, copies c, side, side]`, the copies' channels side by
/// side for a grouped convolution (one group per copy).
fn grouped<B: NetOps>(x: Maps<B>, copies: usize) -> Tensor<B, 4> {
    let Maps { rows, maps, side } = x;
    let c = rows.dims()[1];
    let n = maps / copies;
    rows.reshape([copies, n, side * side, c])
        .permute([1, 0, 3, 2])
        .reshape([n, copies * c, side, side])
}

/// NCHW maps `[n, copies c, side, side]` as pixel rows.
fn from_grouped<B: NetOps>(t: Tensor<B, 4>, copies: usize) -> Maps<B> {
    let [n, channels, side, _] = t.dims();
    let c = channels / copies;
    let rows = t
        .reshape([n, copies, c, side * side])
        .permute([1, 0, 3, 2])
        .reshape([copies * n * side * side, c]);
    Maps {
        rows,
        maps: copies * n,
        side,
    }
}

/// A per-copy bias `[copies, 1, c]` as the `[copies c]` vector a convolution adds.
fn flat<B: NetOps>(b: Tensor<B, 3>) -> Tensor<B, 1> {
    let [copies, _, c] = b.dims();
    b.reshape([copies * c])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Distribution;

    type B = burn::backend::NdArray<f64>;

    fn random<const D: usize>(dims: [usize; D]) -> Tensor<B, D> {
        Tensor::random(dims, Distribution::Normal(0.0, 1.0), &Default::default())
    }

    fn largest_difference(a: Tensor<B, 2>, b: Tensor<B, 2>) -> f64 {
        assert_eq!(a.dims(), b.dims());
        let d = (a - b).abs().max().into_data().to_vec::<f64>();
        d.map(|v| v[0]).unwrap_or(f64::NAN)
    }

    /// Copy `k`'s maps as NCHW, for burn's convolutions.
    fn nchw(rows: &Tensor<B, 2>, k: usize, n: usize, side: usize) -> Tensor<B, 4> {
        let c = rows.dims()[1];
        let per = n * side * side;
        rows.clone()
            .slice([k * per..(k + 1) * per])
            .reshape([n, side, side, c])
            .permute([0, 3, 1, 2])
    }

    /// burn's own convolutions on NCHW maps are the reference, per copy; with one copy (the
    /// training path's 2-D products) and with three.
    #[test]
    fn both_convolutions_match_burns_for_each_copy() {
        for copies in [1, 3] {
            let (n, c, out, side) = (2, 5, 4, 6);
            let maps = copies * n;
            let x = random([maps * side * side, c]);
            let bias = random([copies, 1, out]);
            let w = random([copies, out, c * 16]);
            let y = down(
                Maps {
                    rows: x.clone(),
                    maps,
                    side,
                },
                w.clone(),
                Some(bias.clone()),
            );
            assert_eq!((y.maps, y.side), (maps, side / 2));
            for k in 0..copies {
                let wk = w.clone().slice([k..k + 1]).reshape([out, c, 4, 4]);
                let bk = bias.clone().slice([k..k + 1]).reshape([out]);
                let options = ConvOptions::new([2, 2], [1, 1], [1, 1], 1);
                let theirs = conv2d(nchw(&x, k, n, side), wk, Some(bk), options);
                let ours = nchw(&y.rows, k, n, side / 2);
                let flat = |t: Tensor<B, 4>| t.reshape([n, out * side * side / 4]);
                assert!(largest_difference(flat(ours), flat(theirs)) < 1e-12);
            }

            let wt = random([copies, c, out * 16]);
            let y = up(
                Maps {
                    rows: x.clone(),
                    maps,
                    side,
                },
                wt.clone(),
                Some(bias.clone()),
            );
            assert_eq!((y.maps, y.side), (maps, 2 * side));
            for k in 0..copies {
                let wk = wt.clone().slice([k..k + 1]).reshape([c, out, 4, 4]);
                let bk = bias.clone().slice([k..k + 1]).reshape([out]);
                let options = ConvTransposeOptions::new([2, 2], [1, 1], [0, 0], [1, 1], 1);
                let theirs = conv_transpose2d(nchw(&x, k, n, side), wk, Some(bk), options);
                let ours = nchw(&y.rows, k, n, 2 * side);
                let flat = |t: Tensor<B, 4>| t.reshape([n, out * side * side * 4]);
                assert!(largest_difference(flat(ours), flat(theirs)) < 1e-12);
            }
        }
    }

    #[test]
    fn rearrange_moves_each_element_to_its_place() {
        let t: Tensor<B, 2> =
            Tensor::from_data([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], &Default::default());
        // The transpose: element (i, j) of [3, 2] is element (j, i) of [2, 3].
        let moved = rearrange(t, [3, 2], "transpose", &[], |i| (i % 2) * 3 + i / 2);
        let v = moved.into_data().to_vec::<f64>().unwrap_or_default();
        assert_eq!(v, vec![1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    }
}
