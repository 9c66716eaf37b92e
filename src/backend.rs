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
use burn::tensor::{
    backend::AutodiffBackend, backend::Backend, Element, Tensor, TensorCreationOptions, TensorData,
};

use crate::net_ops::NetOps;

/// A backend that trains and probes games: autodiff over a plain backend, both with ganlab's
/// activations (see [`crate::activation`]).
pub trait GanBackend: AutodiffBackend<InnerBackend: NetOps> + NetOps {}

impl<B: AutodiffBackend<InnerBackend: NetOps> + NetOps> GanBackend for B {}

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
#[cfg(feature = "wgpu")]
pub use burn::backend::{wgpu::WgpuDevice, Wgpu};

/// Whether this machine can run `backend = "wgpu"`: wgpu finds a GPU adapter (Vulkan, Metal or
/// DX12) and runs a first kernel on it. Asked before a study writes anything: burn's wgpu
/// backend panics when it finds no adapter.
pub fn check_wgpu() -> anyhow::Result<()> {
    #[cfg(not(feature = "wgpu"))]
    anyhow::bail!(
        "backend \"wgpu\" needs a ganlab built with `--features wgpu`; this one was not \
         (use backend = \"cpu\", or build with `cargo build --release --features wgpu`)"
    );
    #[cfg(feature = "wgpu")]
    {
        // burn panics (in this thread) when wgpu finds no adapter: caught, without the
        // default hook's message.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let first = std::panic::catch_unwind(|| {
            let t = Tensor::<Wgpu<f32>, 1>::from_floats([1.0, 2.0], &WgpuDevice::default());
            host(t.mul_scalar(2.0))
        });
        std::panic::set_hook(hook);
        match first {
            Ok(v) if v == [2.0, 4.0] => Ok(()),
            Ok(v) => anyhow::bail!("backend \"wgpu\": a first kernel computed {v:?}, not [2, 4]"),
            Err(p) => {
                let msg = crate::error::panic_message(p.as_ref());
                anyhow::bail!(
                    "backend \"wgpu\": no usable GPU adapter on {} (wgpu: {msg}); a Vulkan, \
                     Metal or DX12 driver is needed (on Linux: the GPU's Vulkan driver, e.g. \
                     Debian's mesa-vulkan-drivers for AMD and Intel)",
                    crate::store::host_name()
                )
            }
        }
    }
}

/// Whether this machine can run `backend = "cuda"`: NVIDIA's driver library and CUDA's run-time
/// compiler (burn compiles its kernels with it) load, the driver starts, and it sees a GPU.
/// Asked before a study writes anything: burn's CUDA backend panics inside a worker thread
/// when any of them is missing.
pub fn check_cuda() -> anyhow::Result<()> {
    #[cfg(not(feature = "cuda"))]
    anyhow::bail!(
        "backend \"cuda\" needs a ganlab built with `--features cuda`; this one was not \
         (use backend = \"cpu\", or build with `cargo build --release --features cuda`)"
    );
    #[cfg(feature = "cuda")]
    {
        // SAFETY: these only try to load the libraries (dlopen), nothing is called in them.
        if !unsafe { cudarc::driver::sys::is_culib_present() } {
            anyhow::bail!(
                "backend \"cuda\": NVIDIA's driver library (libcuda.so) cannot be loaded on \
                 {}: no NVIDIA driver is installed, or LD_LIBRARY_PATH does not reach it; use \
                 backend = \"cpu\" here",
                crate::store::host_name()
            );
        }
        if !unsafe { cudarc::nvrtc::sys::is_culib_present() } {
            anyhow::bail!(
                "backend \"cuda\": CUDA's run-time compiler (libnvrtc.so), which burn compiles \
                 its kernels with, cannot be loaded on {}: install CUDA's nvrtc or add its \
                 folder to LD_LIBRARY_PATH",
                crate::store::host_name()
            );
        }
        cudarc::driver::result::init().map_err(|e| {
            anyhow::anyhow!("backend \"cuda\": NVIDIA's driver does not start: {e:?}")
        })?;
        let gpus = cudarc::driver::result::device::get_count().map_err(|e| {
            anyhow::anyhow!("backend \"cuda\": NVIDIA's driver cannot count the GPUs: {e:?}")
        })?;
        if gpus < 1 {
            anyhow::bail!(
                "backend \"cuda\": NVIDIA's driver sees no GPU on {} (CUDA_VISIBLE_DEVICES?)",
                crate::store::host_name()
            );
        }
        Ok(())
    }
}

/// Creation options for float tensors of `B` on `device` in `B`'s own float type.
///
/// burn 0.21 keeps a default float type per device, fixed by the first tensor made on it, and
/// `NdArray<f32>` and `NdArray<f64>` share one device: without an explicit type, whichever
/// precision touched the device first decided the type of every later tensor of the other one
/// (an f64 trial silently computed in f32 after an `ndarray` f32 trial, and the other way
/// round). Every tensor ganlab makes from host values or from nothing goes through this.
pub fn float_options<B: Backend>(device: &B::Device) -> TensorCreationOptions<B> {
    TensorCreationOptions::new(device.clone()).with_dtype(<B::FloatElem as Element>::dtype())
}

/// A `rows x cols` tensor from row-major host values.
pub fn matrix<B: Backend>(
    values: Vec<f64>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(values, [rows, cols]).convert::<B::FloatElem>(),
        float_options::<B>(device),
    )
}

/// A `rows x cols` tensor from row-major host values, of float type `dtype` (which may differ
/// from `B`'s default: the probes compute in f64 on Flex, whose default is f32).
pub fn matrix_in<B: Backend>(
    values: Vec<f64>,
    rows: usize,
    cols: usize,
    device: &B::Device,
    dtype: burn::tensor::DType,
) -> Tensor<B, 2> {
    Tensor::from_data(
        TensorData::new(values, [rows, cols]).convert_dtype(dtype),
        TensorCreationOptions::new(device.clone()).with_dtype(dtype),
    )
}

/// All values of a tensor, as f64, row-major.
pub fn host<B: Backend, const D: usize>(t: Tensor<B, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// A named array of host values, as trial-state checkpoints store them.
#[derive(Debug, Clone, PartialEq)]
pub struct HostArray {
    pub name: String,
    pub shape: Vec<usize>,
    pub values: Vec<f64>,
}

impl HostArray {
    /// A tensor's values under `name`.
    pub fn of<B: Backend, const D: usize>(name: String, t: &Tensor<B, D>) -> HostArray {
        HostArray {
            name,
            shape: t.dims().to_vec(),
            values: host(t.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::DType;

    #[test]
    fn tensors_keep_their_backends_precision_whatever_ran_first() {
        // Both precisions of NdArray on the one device, in both orders: each keeps its own.
        for _ in 0..2 {
            let single = matrix::<NdArray<f32>>(vec![0.1], 1, 1, &CPU);
            let double = matrix::<NdArray<f64>>(vec![0.1], 1, 1, &CPU);
            assert_eq!(single.dtype(), DType::F32);
            assert_eq!(double.dtype(), DType::F64);
            assert_eq!(host(double)[0], 0.1);
        }
    }
}
