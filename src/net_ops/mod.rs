//! The operations ganlab implements per backend instead of taking burn's, and the trait
//! [`NetOps`] that says, per backend, which formulation of a layer is fast there.
//!
//! Every replacement gives burn's numbers to the last bit; they exist for speed under nested
//! autodiff, where a probe's Jacobian products differentiate the backward pass again:
//! - `tanh`: burn 0.21's autodiff recomputes tanh from its input in the backward pass, and
//!   under nested autodiff that recomputation is itself recorded and differentiated (four
//!   evaluations of tanh per forward one); here the backward pass reuses the output, and on
//!   NdArray equal copies of a probe's parameters take tanh once (`tanh`).
//! - `matmul`: burn-ndarray copies both factors and the result of every product
//!   (`matmul`).
//! - `REPEAT_BIAS` and `CONVOLUTIONS_AS_PRODUCTS`: which of two equal formulations of a bias
//!   sum and of the DCGAN's convolutions (`nets::conv`) a backend runs fast.

mod matmul;
mod tanh;

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

/// A backend as ganlab's nets use it. Plain backends take burn's operations; NdArray and
/// autodiff backends take this module's where they are faster.
pub trait NetOps: Backend {
    /// Whether the DCGAN's convolutions run as row gathers and matrix products
    /// (`nets::conv`) rather than as burn's `conv2d`: true where burn's convolution gradients
    /// are slow and row copies fast (burn-flex); NdArray's `select` copies row by row through
    /// views and CUDA has its own convolution kernels, so they keep burn's.
    const CONVOLUTIONS_AS_PRODUCTS: bool;

    /// Whether a layer's bias is repeated to the rows of stacked copies before it is added
    /// (`Net::forward`) rather than broadcast: burn-flex adds a rank-3 broadcast element by
    /// element through strided indices, while burn's repeat on NdArray assigns one slice
    /// per row. Same numbers both ways (the gradient of either is a sum over the rows).
    const REPEAT_BIAS: bool;

    /// Elementwise tanh.
    fn tanh_op(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// The matrix product of the last two dimensions, batched over the others.
    fn matmul_op(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self>;
}

/// tanh of a tensor of any rank.
pub fn tanh<B: NetOps, const D: usize>(x: Tensor<B, D>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::tanh_op(
        x.into_primitive().tensor(),
    )))
}

/// The matrix product `lhs rhs` of tensors of rank 2 or more (see `matmul`).
pub fn matmul<B: NetOps, const D: usize>(lhs: Tensor<B, D>, rhs: Tensor<B, D>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::matmul_op(
        lhs.into_primitive().tensor(),
        rhs.into_primitive().tensor(),
    )))
}

macro_rules! plain_ops {
    ($($backend:ty => $products:expr),* $(,)?) => {$(
        impl NetOps for $backend {
            const CONVOLUTIONS_AS_PRODUCTS: bool = $products;
            const REPEAT_BIAS: bool = true;

            fn tanh_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
                <$backend as burn::tensor::ops::FloatTensorOps<$backend>>::float_tanh(x)
            }

            fn matmul_op(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
                <$backend as burn::tensor::ops::FloatTensorOps<$backend>>::float_matmul(lhs, rhs)
            }
        }
    )*};
}

plain_ops!(burn::backend::Flex => true);
#[cfg(feature = "cuda")]
plain_ops!(burn::backend::Cuda<f32> => false, burn::backend::Cuda<f64> => false);
#[cfg(feature = "wgpu")]
plain_ops!(burn::backend::Wgpu<f32> => false);

macro_rules! ndarray_ops {
    ($($float:ty),*) => {$(
        impl NetOps for burn::backend::NdArray<$float> {
            const CONVOLUTIONS_AS_PRODUCTS: bool = false;
            const REPEAT_BIAS: bool = false;

            fn tanh_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
                tanh::ndarray_tanh(x, <Self as burn::tensor::ops::FloatTensorOps<Self>>::float_tanh)
            }

            fn matmul_op(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
                matmul::ndarray_matmul(
                    lhs,
                    rhs,
                    <Self as burn::tensor::ops::FloatTensorOps<Self>>::float_matmul,
                )
            }
        }
    )*};
}

ndarray_ops!(f32, f64);

impl<B: NetOps, C: CheckpointStrategy> NetOps for Autodiff<B, C> {
    const CONVOLUTIONS_AS_PRODUCTS: bool = B::CONVOLUTIONS_AS_PRODUCTS;
    const REPEAT_BIAS: bool = B::REPEAT_BIAS;

    fn tanh_op(x: FloatTensor<Self>) -> FloatTensor<Self> {
        tanh::autodiff_tanh::<B, C>(x)
    }

    fn matmul_op(lhs: FloatTensor<Self>, rhs: FloatTensor<Self>) -> FloatTensor<Self> {
        matmul::autodiff_matmul::<B, C>(lhs, rhs)
    }
}
