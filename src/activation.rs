//! Activations whose backward pass reuses the forward output.
//!
//! burn 0.21's autodiff recomputes tanh from its input in the backward pass. Under nested
//! autodiff (probes, input-gradient penalties) that recomputation is itself recorded and
//! differentiated, so one tanh of the forward pass costs four evaluations of tanh by the time
//! a Jacobian-vector product is done; on the probe benchmark that was 40 % of the time.
//! Here tanh keeps its output y, and its backward pass is grad (1 - y^2), built from the inner
//! backend's arithmetic so that the next level of autodiff can differentiate it again.
//!
//! The trait also says, per backend, which of two equal formulations of the DCGAN's
//! convolutions is fast there (`CONVOLUTIONS_AS_PRODUCTS`, used by `nets::conv`).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

/// A backend's activations as ganlab uses them. Plain backends take burn's own; autodiff
/// backends record a backward pass that reuses the output.
pub trait Activations: Backend {
    /// Whether the DCGAN's convolutions run as row gathers and matrix products
    /// (`nets::conv`) rather than as burn's `conv2d`: true where burn's convolution gradients
    /// are slow and row copies fast (burn-flex); NdArray's `select` copies row by row through
    /// views and CUDA has its own convolution kernels, so they keep burn's.
    const CONVOLUTIONS_AS_PRODUCTS: bool;

    /// Elementwise tanh.
    fn tanh_op(x: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// tanh of a tensor of any rank.
pub fn tanh<B: Activations, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::tanh_op(
        x.into_primitive().tensor(),
    )))
}

macro_rules! plain_activations {
    ($($backend:ty => $products:expr),* $(,)?) => {$(
        impl Activations for $backend {
            const CONVOLUTIONS_AS_PRODUCTS: bool = $products;

            fn tanh_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
                <$backend as burn::tensor::ops::FloatTensorOps<$backend>>::float_tanh(x)
            }
        }
    )*};
}

plain_activations!(
    burn::backend::NdArray<f32> => false,
    burn::backend::NdArray<f64> => false,
    burn::backend::Flex => true,
);
#[cfg(feature = "cuda")]
plain_activations!(burn::backend::Cuda<f32> => false, burn::backend::Cuda<f64> => false);
#[cfg(feature = "wgpu")]
plain_activations!(burn::backend::Wgpu<f32> => false);

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

impl<B: Activations, C: CheckpointStrategy> Activations for Autodiff<B, C> {
    const CONVOLUTIONS_AS_PRODUCTS: bool = B::CONVOLUTIONS_AS_PRODUCTS;

    fn tanh_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
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
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{matrix, CpuF64, CPU};

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
}
