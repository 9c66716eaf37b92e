//! tanh whose backward pass reuses the forward output, and NdArray's tanh taken once for
//! equal copies.
//!
//! burn 0.21's autodiff recomputes tanh from its input in the backward pass. Under nested
//! autodiff (probes, input-gradient penalties) that recomputation is itself recorded and
//! differentiated, so one tanh of the forward pass cost four evaluations of tanh by the time
//! a Jacobian-vector product was done; on the probe benchmark that was 40 % of the time.
//! Here tanh keeps its output y, and its backward pass is grad (1 - y^2), built from the inner
//! backend's arithmetic so that the next level of autodiff can differentiate it again.

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::TensorData;

use super::NetOps;

/// NdArray's tanh, computed once for equal copies (see [`tanh_once_per_copy`]); the same
/// numbers as burn's `float_tanh`, which takes f32's tanh in f64.
pub(super) fn ndarray_tanh(
    x: burn_ndarray::NdArrayTensor,
    burn_tanh: fn(burn_ndarray::NdArrayTensor) -> burn_ndarray::NdArrayTensor,
) -> burn_ndarray::NdArrayTensor {
    use burn_ndarray::NdArrayTensor;
    let once = match &x {
        NdArrayTensor::F64(s) => {
            let v = s.view();
            tanh_once_per_copy(v.as_slice(), v.shape(), f64::to_bits, f64::tanh)
        }
        NdArrayTensor::F32(s) => {
            let v = s.view();
            tanh_once_per_copy(v.as_slice(), v.shape(), f32::to_bits, |a| {
                (a as f64).tanh() as f32
            })
        }
        _ => None,
    };
    match once {
        Some(data) => NdArrayTensor::from_data(data),
        None => burn_tanh(x),
    }
}

/// tanh of `[copies, ..]` values whose copies are bitwise equal, computed on the first copy
/// and repeated; None when the values are not such copies (or not in standard layout).
///
/// Why: a probe stacks equal copies of the parameters to get many Jacobian products from one
/// graph (`probe::field`), so every copy's activations are the same numbers, and glibc's tanh
/// was a quarter of the Jacobian's time. The values are exactly those of tanh on every
/// element; comparing the copies costs a small part of one tanh per element, and rows that
/// differ (training, a probe's batched points) are told apart at their first element.
fn tanh_once_per_copy<E: burn::tensor::Element, U: PartialEq>(
    values: Option<&[E]>,
    shape: &[usize],
    bits: impl Fn(E) -> U,
    tanh: impl Fn(E) -> E,
) -> Option<TensorData> {
    if shape.len() < 3 || shape[0] < 2 {
        return None;
    }
    let values = values?;
    let per_copy = values.len() / shape[0];
    let first = values.get(..per_copy).filter(|f| !f.is_empty())?;
    let equal = |copy: &[E]| copy.iter().zip(first).all(|(a, b)| bits(*a) == bits(*b));
    if !values.chunks(per_copy).skip(1).all(equal) {
        return None;
    }
    let once: Vec<E> = first.iter().map(|&a| tanh(a)).collect();
    Some(TensorData::new(once.repeat(shape[0]), shape.to_vec()))
}

/// tanh's node in the autodiff graph; its state is the output.
#[derive(Debug)]
struct TanhKeepingOutput;

impl<B: Backend> Backward<B, 1> for TanhKeepingOutput {
    type State = FloatTensor<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let y = ops.state;
        unary::<B, _>(ops.parents, ops.node, grads, |grad| {
            // d tanh(x) / dx = 1 - tanh(x)^2
            let y2 = B::float_mul(y.clone(), y);
            B::float_mul(grad, B::float_add_scalar(B::float_neg(y2), 1.0.into()))
        });
    }
}

/// tanh on `Autodiff<B>`: this module's node, which keeps the output.
pub(super) fn autodiff_tanh<B: NetOps, C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<B, C>>,
) -> FloatTensor<Autodiff<B, C>> {
    // Compute bound: the output is kept, never recomputed from the input.
    match TanhKeepingOutput
        .prepare::<C>([x.node.clone()])
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let y = B::tanh_op(x.primitive);
            prep.finish(y.clone(), y)
        }
        OpsKind::UnTracked(prep) => prep.finish(B::tanh_op(x.primitive)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{matrix, CpuF64, CPU};
    use crate::net_ops::tanh;
    use burn::tensor::Tensor;

    type Nested = Autodiff<CpuF64>;

    #[test]
    fn first_and_second_derivatives_of_tanh_are_the_closed_forms() {
        let xs = vec![-3.0, -0.7, 0.0, 0.2, 1.5, 20.0];
        let n = xs.len();
        // Inner level: g(x) = d/dx sum tanh(x) = 1 - tanh^2 x; outer: d/dx sum g = -2 t (1 - t^2).
        let x = matrix::<CpuF64>(xs.clone(), 1, n, &CPU).require_grad();
        let x_up = Tensor::<Nested, 2>::from_inner(x.clone()).require_grad();
        let y = tanh(x_up.clone());
        let values: Vec<f64> = crate::backend::host(y.clone().inner());
        let g = x_up.grad(&y.sum().backward()).unwrap();
        let first: Vec<f64> = crate::backend::host(g.clone());
        let second: Vec<f64> = crate::backend::host(x.grad(&g.sum().backward()).unwrap());
        for i in 0..n {
            let t = xs[i].tanh();
            assert_eq!(values[i], t);
            assert!(
                (first[i] - (1.0 - t * t)).abs() < 1e-15,
                "first at {}",
                xs[i]
            );
            let want = -2.0 * t * (1.0 - t * t);
            assert!((second[i] - want).abs() < 1e-15, "second at {}", xs[i]);
        }
    }

    #[test]
    fn tanh_of_equal_copies_is_taken_once_with_burns_bits() {
        type Plain = burn::backend::NdArray<f64>;
        let copy = [-20.0, -0.7, -0.0, 0.0, 1e-300, 0.2, 1.5, 30.0];
        let tensor = |values: Vec<f64>| -> Tensor<Plain, 3> {
            let n = values.len() / copy.len();
            Tensor::from_data(
                TensorData::new(values, [n, 2, 4]),
                (&Default::default(), burn::tensor::DType::F64),
            )
        };
        let bits = |t: Tensor<Plain, 3>| -> Vec<u64> {
            crate::backend::host(t)
                .into_iter()
                .map(f64::to_bits)
                .collect()
        };
        let equal = copy.repeat(3);
        let mut unequal = equal.clone();
        unequal[2 * copy.len() + 3] = -0.0; // differs from its copy only in the sign of zero
        for values in [equal.clone(), unequal.clone()] {
            let ours = bits(tanh(tensor(values.clone())));
            let burns = bits(tensor(values).tanh());
            assert_eq!(ours, burns);
        }
        // Taken once for equal copies only: a sign of zero makes copies unequal.
        let once = |v: &[f64]| tanh_once_per_copy(Some(v), &[3, 2, 4], f64::to_bits, f64::tanh);
        assert!(once(&equal).is_some());
        assert!(once(&unequal).is_none());
        assert!(tanh_once_per_copy(Some(&equal), &[6, 4], f64::to_bits, f64::tanh).is_none());
    }
}
