//! Backend choice and the few conversions between host vectors and tensors.
//!
//! Training runs on `Autodiff<X>` where X is the plain backend. On the CPU, f32 runs on burn's
//! `Flex` backend and f64 on `NdArray`: `Flex` hands strided (transposed) operands straight to
//! its gemm, where NdArray copies every transposed operand of the backward pass; on the
//! reference benchmark that made f32 training 1.6x faster (see `ganlab bench`). The `ndarray`
//! backend kind keeps NdArray for f32 too, to cross-check numbers between backends. CUDA runs
//! on NVIDIA GPUs. Parameters and optimiser state live as plain `X` tensors; every step lifts
//! them into the autodiff graph. Input-gradient penalties nest one more `Autodiff` on top
//! (see `game::penalty`), which gives exact second derivatives in burn 0.21.0.

use burn::backend::{flex::FlexDevice, ndarray::NdArrayDevice, Autodiff, Flex, NdArray};
use burn::tensor::{backend::AutodiffBackend, backend::Backend, Tensor, TensorData};

use crate::activation::Activations;

/// A backend that trains and probes games: autodiff over a plain backend, both with ganlab's
/// activations (see [`crate::activation`]).
pub trait GanBackend: AutodiffBackend<InnerBackend: Activations> + Activations {}

impl<B: AutodiffBackend<InnerBackend: Activations> + Activations> GanBackend for B {}

/// CPU training backend in f32 (the default).
pub type CpuF32 = Autodiff<Flex>;
/// Its device.
pub const CPU_F32: FlexDevice = FlexDevice;
/// CPU training backend in f64, and NdArray's in f32.
pub type CpuF64 = Autodiff<NdArray<f64>>;
pub type NdArrayF32 = Autodiff<NdArray<f32>>;
/// The NdArray device.
pub const CPU: NdArrayDevice = NdArrayDevice::Cpu;

#[cfg(feature = "cuda")]
pub use burn::backend::{cuda::CudaDevice, Cuda};

/// A `rows x cols` tensor from row-major host values.
pub fn matrix<B: Backend>(
    values: Vec<f64>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(values, [rows, cols]).convert::<B::FloatElem>(),
        device,
    )
}

/// All values of a tensor, as f64, row-major.
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}
