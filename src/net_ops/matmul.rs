//! Matrix products without burn-ndarray's copies.
//!
//! burn-ndarray 0.21 reshapes both factors of a product to rank 3 and the result back, and its
//! reshape copies every array (`to_shape` gives a view, `into_shared` copies it), so each
//! product and each of its two gradient products copied three arrays. Under nested autodiff
//! that was a fifth of a probe's Jacobian (18 % at 2403 parameters). Here the factors go to
//! matrixmultiply as they lie, transposed or not, through ndarray's `general_mat_mul`, which is
//! what burn-ndarray calls on its copies: matrixmultiply packs either layout into the same
//! panels, so every product has burn's numbers to the last bit.
//!
//! The autodiff node takes burn's gradients (`grad rhs^T` and `lhs^T grad`, in burn's order)
//! with this product at the level below, so every level of nested autodiff takes it. Shapes that
//! broadcast batch dimensions go to burn's product and node unchanged.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{binary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::ops::{FloatTensor, FloatTensorOps};
use burn::tensor::{TensorData, TensorMetadata};
use burn_ndarray::NdArrayTensor;
use ndarray::{ArrayView2, ArrayViewD, ArrayViewMut2, Ix2, Ix3, LinalgScalar};

use super::NetOps;

/// NdArray's product for f64 and f32 factors of rank 2 or 3 with equal batch dimensions;
/// anything else goes to `burn_product`.
pub(crate) fn ndarray_matmul(
    lhs: NdArrayTensor,
    rhs: NdArrayTensor,
    burn_product: fn(NdArrayTensor, NdArrayTensor) -> NdArrayTensor,
) -> NdArrayTensor {
    let product = match (&lhs, &rhs) {
        (NdArrayTensor::F64(a), NdArrayTensor::F64(b)) => product(a.view(), b.view()),
        (NdArrayTensor::F32(a), NdArrayTensor::F32(b)) => product(a.view(), b.view()),
        _ => None,
    };
    match product {
        Some(data) => NdArrayTensor::from_data(data),
        None => burn_product(lhs, rhs),
    }
}

/// `a b` over the last two dimensions, or None for shapes this does not take.
fn product<E: LinalgScalar + burn::tensor::Element>(
    a: ArrayViewD<'_, E>,
    b: ArrayViewD<'_, E>,
) -> Option<TensorData> {
    let (sa, sb) = (a.shape(), b.shape());
    let rank = sa.len();
    if rank != sb.len() || !(2..=3).contains(&rank) || sa[..rank - 2] != sb[..rank - 2] {
        return None;
    }
    let (m, k, n) = (sa[rank - 2], sa[rank - 1], sb[rank - 1]);
    if sb[rank - 2] != k {
        return None;
    }
    let mut shape = sa.to_vec();
    shape[rank - 1] = n;
    let mut out = vec![E::zero(); shape.iter().product()];
    if rank == 2 {
        let (a, b) = (
            a.into_dimensionality::<Ix2>().ok()?,
            b.into_dimensionality::<Ix2>().ok()?,
        );
        multiply(a, b, &mut out, m, n)?;
    } else if m * n > 0 {
        // One batch after another, never on rayon: products run inside burn's autodiff with
        // its graph locked, and a rayon worker waiting here may be handed a job that takes the
        // same lock (that deadlocked a probe). Parallelism comes from the callers.
        let (a, b) = (
            a.into_dimensionality::<Ix3>().ok()?,
            b.into_dimensionality::<Ix3>().ok()?,
        );
        for (i, c) in out.chunks_mut(m * n).enumerate() {
            let a = a.index_axis(ndarray::Axis(0), i);
            let b = b.index_axis(ndarray::Axis(0), i);
            multiply(a, b, c, m, n)?;
        }
    }
    Some(TensorData::new(out, shape))
}

/// c = a b into the row-major `m x n` slice c; None (and c untouched) when c is not `m x n`.
fn multiply<E: LinalgScalar>(
    a: ArrayView2<'_, E>,
    b: ArrayView2<'_, E>,
    c: &mut [E],
    m: usize,
    n: usize,
) -> Option<()> {
    let mut c = ArrayViewMut2::from_shape((m, n), c).ok()?;
    ndarray::linalg::general_mat_mul(E::one(), &a, &b, E::zero(), &mut c);
    Some(())
}

/// The product's node: its state is the factors the gradients need (lhs for rhs's gradient,
/// rhs for lhs's), as burn's node keeps them.
#[derive(Debug)]
struct Matmul;

impl<B: NetOps> Backward<B, 2> for Matmul {
    type State = (Option<FloatTensor<B>>, Option<FloatTensor<B>>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (lhs, rhs) = ops.state;
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            // binary() asks for a factor's gradient only where the factor is tracked, and
            // then the other factor was kept.
            |grad| match rhs {
                Some(rhs) => B::matmul_op(grad, B::float_transpose(rhs)),
                None => unreachable!("rhs is kept when lhs is tracked"),
            },
            |grad| match lhs {
                Some(lhs) => B::matmul_op(B::float_transpose(lhs), grad),
                None => unreachable!("lhs is kept when rhs is tracked"),
            },
        );
    }
}

/// The product on `Autodiff<B>`: this module's node where the batch dimensions are equal,
/// burn's (which sums the gradients of broadcast dimensions) where they are not.
pub(crate) fn autodiff_matmul<B: NetOps, C: CheckpointStrategy>(
    lhs: FloatTensor<Autodiff<B, C>>,
    rhs: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    let (sa, sb) = (lhs.primitive.shape(), rhs.primitive.shape());
    let rank = sa.num_dims();
    if rank != sb.num_dims() || sa[..rank.saturating_sub(2)] != sb[..rank.saturating_sub(2)] {
        return Autodiff::<B, C>::float_matmul(lhs, rhs);
    }
    let (lhs_tracked, rhs_tracked) = (lhs.is_tracked(), rhs.is_tracked());
    match Matmul
        .prepare::<C>([lhs.node.clone(), rhs.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let state = (
                rhs_tracked.then(|| lhs.primitive.clone()),
                lhs_tracked.then(|| rhs.primitive.clone()),
            );
            prep.finish(state, B::matmul_op(lhs.primitive, rhs.primitive))
        }
        OpsKind::UnTracked(prep) => prep.finish(B::matmul_op(lhs.primitive, rhs.primitive)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::host;
    use crate::net_ops::matmul;
    use burn::tensor::Tensor;

    type Plain = burn::backend::NdArray<f64>;
    type Once = Autodiff<Plain>;
    type Twice = Autodiff<Once>;

    /// A tensor of fixed, irregular values (no random state shared with other tests).
    fn values<B: burn::tensor::backend::Backend, const D: usize>(
        shape: [usize; D],
        seed: f64,
    ) -> Tensor<B, D> {
        let n: usize = shape.iter().product();
        let v: Vec<f64> = (0..n)
            .map(|i| (seed + 0.7 * i as f64).sin() * 1.3)
            .collect();
        Tensor::from_data(
            burn::tensor::TensorData::new(v, shape),
            (&Default::default(), burn::tensor::DType::F64),
        )
    }

    fn bits(values: Vec<f64>) -> Vec<u64> {
        values.into_iter().map(f64::to_bits).collect()
    }

    /// This module's product and burn's, as host values: equal to the last bit.
    fn same_bits<const D: usize>(a: Tensor<Plain, D>, b: Tensor<Plain, D>) {
        let ours = host(matmul(a.clone(), b.clone()));
        let burns = host(a.matmul(b));
        assert_eq!(ours.len(), burns.len());
        assert_eq!(bits(ours), bits(burns));
    }

    #[test]
    fn products_have_burns_bits_in_every_layout() {
        same_bits(values::<Plain, 2>([5, 7], 0.1), values([7, 3], 0.2));
        same_bits(values::<Plain, 3>([4, 5, 7], 0.3), values([4, 7, 3], 0.4));
        // Transposed factors, as the gradients' products take them (views, not copies).
        same_bits(
            values::<Plain, 2>([7, 5], 0.5).transpose(),
            values([7, 3], 0.6),
        );
        same_bits(
            values::<Plain, 2>([5, 7], 0.7),
            values::<Plain, 2>([3, 7], 0.8).transpose(),
        );
        same_bits(
            values::<Plain, 3>([4, 7, 5], 0.9).swap_dims(1, 2),
            values::<Plain, 3>([4, 3, 7], 1.0).swap_dims(1, 2),
        );
        // Broadcast batch dimensions go to burn's product.
        same_bits(values::<Plain, 3>([1, 5, 7], 1.1), values([4, 7, 3], 1.2));
        // An empty inner dimension gives zeros (burn-ndarray's product divides by zero there).
        let empty = matmul(values::<Plain, 2>([5, 0], 1.3), values([0, 3], 1.4));
        assert_eq!(empty.dims(), [5, 3]);
        assert!(host(empty).iter().all(|v| *v == 0.0));
    }

    /// First and second derivatives of sum(c * (x tanh(w))^2) by this module's node and by
    /// burn's: the values, the gradients and the gradients of the gradients have equal bits.
    fn nested_derivatives<const D: usize>(
        x_shape: [usize; D],
        w_shape: [usize; D],
        product: fn(Tensor<Twice, D>, Tensor<Twice, D>) -> Tensor<Twice, D>,
    ) -> Vec<Vec<u64>> {
        let x = values::<Once, D>(x_shape, 0.1).require_grad();
        let w = values::<Once, D>(w_shape, 0.2).require_grad();
        let x_up = Tensor::<Twice, D>::from_inner(x.clone()).require_grad();
        let w_up = Tensor::<Twice, D>::from_inner(w.clone()).require_grad();
        let y = product(x_up.clone(), crate::net_ops::tanh(w_up.clone()));
        let c = values::<Twice, D>(y.dims(), 0.3);
        let loss = (y.clone() * y.clone() * c).sum();
        let grads = loss.backward();
        let (gx, gw) = match (x_up.grad(&grads), w_up.grad(&grads)) {
            (Some(gx), Some(gw)) => (gx, gw),
            _ => panic!("both factors have gradients"),
        };
        // Second level: the gradient of a random projection of the first gradients.
        let (rx, rw) = (
            values::<Once, D>(x_shape, 0.4),
            values::<Once, D>(w_shape, 0.5),
        );
        let second = (gx.clone() * rx).sum() + (gw.clone() * rw).sum();
        let grads2 = second.backward();
        let (hx, hw) = match (x.grad(&grads2), w.grad(&grads2)) {
            (Some(hx), Some(hw)) => (hx, hw),
            _ => panic!("both leaves have second derivatives"),
        };
        vec![
            bits(host(y.inner().inner())),
            bits(host(gx.inner())),
            bits(host(gw.inner())),
            bits(host(hx)),
            bits(host(hw)),
        ]
    }

    #[test]
    fn nested_derivatives_of_the_product_have_burns_bits() {
        let ours = nested_derivatives([6, 4], [4, 3], |a, b| matmul(a, b));
        let burns = nested_derivatives([6, 4], [4, 3], |a, b| a.matmul(b));
        assert_eq!(ours, burns);
        let ours = nested_derivatives([3, 6, 4], [3, 4, 5], |a, b| matmul(a, b));
        let burns = nested_derivatives([3, 6, 4], [3, 4, 5], |a, b| a.matmul(b));
        assert_eq!(ours, burns);
        assert!(ours.iter().all(|v| !v.is_empty()));
    }
}
