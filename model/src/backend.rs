//! The one place that names concrete burn backends, and the run-time device choice.
//!
//! Model code is generic over `B: Backend`; binaries pick a [`DeviceChoice`] (`--device
//! auto|cpu|cuda`), [`select`] turns it into a [`Selected`] device, and [`Selected::run`] /
//! [`Selected::run_train`] monomorphise a [`BackendTask`] / [`TrainTask`] for it.
//!
//! CPU is burn-flex (the `gemm` crate's kernels, AVX-512 where the CPU has it, rayon threads).
//! The `cuda` cargo feature adds burn's CUDA backend, which loads `libcuda` at run time. Without
//! a GPU the first CUDA op panics inside burn, so [`select`] first probes for the NVIDIA driver
//! and `libcuda.so.1` without touching CUDA, then runs one small op under `catch_unwind` with the
//! panic message silenced. `auto` falls back to CPU with exactly one
//! log line; an explicit `cuda` that cannot be honoured is an error.

use std::fmt;
use std::str::FromStr;

use burn::backend::Autodiff;
use burn::tensor::backend::{AutodiffBackend, Backend};

/// The CPU backend.
pub type Cpu = burn_flex::Flex<f32>;
/// The CPU backend with automatic differentiation, for training.
pub type CpuTrain = Autodiff<Cpu>;
/// The CUDA backend (f32 floats, i32 ints).
#[cfg(feature = "cuda")]
pub type Gpu = burn::backend::Cuda<f32, i32>;
/// The CUDA backend with automatic differentiation, for training.
#[cfg(feature = "cuda")]
pub type GpuTrain = Autodiff<Gpu>;

/// Whether `B` is the CPU inference backend [`Cpu`], where the decoder and the temperature grid
/// run fused host kernels ([`crate::fused`], [`crate::grid`]) between the matrix products. Not
/// for `Autodiff<Cpu>`: training keeps the differentiable tensor ops.
pub fn is_cpu<B: Backend>() -> bool {
    std::any::TypeId::of::<B>() == std::any::TypeId::of::<Cpu>()
}

/// What the operator asked for with `--device` (`auto`, `cpu` or `cuda`, also in config files).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceChoice {
    /// CUDA when built with the `cuda` feature and a GPU answers, else CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
    /// CUDA device 0, or an error.
    Cuda,
}

/// Why the requested device cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// `--device` got a value other than `auto`, `cpu` or `cuda`.
    #[error("unknown device `{0}` (expected auto, cpu or cuda)")]
    UnknownDevice(String),
    /// `cuda` was requested from a build without the `cuda` feature.
    #[error("this build has no CUDA support (rebuild with `--features cuda`)")]
    CudaNotBuilt,
    /// `cuda` was requested and no usable GPU was found.
    #[error("no usable CUDA GPU: {0}")]
    NoGpu(String),
}

impl FromStr for DeviceChoice {
    type Err = BackendError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "cpu" => Ok(Self::Cpu),
            "cuda" | "gpu" => Ok(Self::Cuda),
            _ => Err(BackendError::UnknownDevice(s.to_string())),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        })
    }
}

/// A device ready for work, with its backend fixed.
#[derive(Debug, Clone)]
pub enum Selected {
    /// The CPU (Flex).
    Cpu(burn_flex::FlexDevice),
    /// A CUDA GPU.
    #[cfg(feature = "cuda")]
    Cuda(burn::backend::cuda::CudaDevice),
}

/// Work generic over an inference backend; [`Selected::run`] calls it with the chosen one.
pub trait BackendTask {
    /// What the work returns.
    type Output;
    /// Does the work on `device`.
    fn run<B: Backend>(self, device: B::Device) -> Self::Output;
}

/// Work generic over a training (autodiff) backend; see [`Selected::run_train`].
pub trait TrainTask {
    /// What the work returns.
    type Output;
    /// Does the work on `device`.
    fn run<B: AutodiffBackend>(self, device: B::Device) -> Self::Output;
}

impl Selected {
    /// Runs `task` on this device's inference backend.
    pub fn run<T: BackendTask>(&self, task: T) -> T::Output {
        match self {
            Self::Cpu(device) => task.run::<Cpu>(*device),
            #[cfg(feature = "cuda")]
            Self::Cuda(device) => task.run::<Gpu>(device.clone()),
        }
    }

    /// Runs `task` on this device's autodiff backend.
    pub fn run_train<T: TrainTask>(&self, task: T) -> T::Output {
        match self {
            Self::Cpu(device) => task.run::<CpuTrain>(*device),
            #[cfg(feature = "cuda")]
            Self::Cuda(device) => task.run::<GpuTrain>(device.clone()),
        }
    }

    /// A short name for logs and metrics labels: `cpu` or `cuda:N`.
    pub fn name(&self) -> String {
        match self {
            Self::Cpu(_) => "cpu".to_string(),
            #[cfg(feature = "cuda")]
            Self::Cuda(device) => format!("cuda:{}", device.index),
        }
    }

    /// Whether this is the CPU.
    pub fn is_cpu(&self) -> bool {
        matches!(self, Self::Cpu(_))
    }
}

/// Turns the operator's choice into a usable device. `auto` never fails: it logs one line
/// saying which device it took and why.
pub fn select(choice: DeviceChoice) -> Result<Selected, BackendError> {
    match choice {
        DeviceChoice::Cpu => Ok(Selected::Cpu(Default::default())),
        DeviceChoice::Cuda => cuda(),
        DeviceChoice::Auto => match cuda() {
            Ok(selected) => {
                tracing::info!(device = %selected.name(), "using CUDA GPU");
                Ok(selected)
            }
            Err(reason) => {
                tracing::info!(%reason, "using CPU");
                Ok(Selected::Cpu(Default::default()))
            }
        },
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda() -> Result<Selected, BackendError> {
    Err(BackendError::CudaNotBuilt)
}

#[cfg(feature = "cuda")]
fn cuda() -> Result<Selected, BackendError> {
    use burn::tensor::Tensor;

    probe::driver_present().map_err(BackendError::NoGpu)?;
    let device = burn::backend::cuda::CudaDevice::default();
    let first_op = {
        let device = device.clone();
        move || {
            Tensor::<Gpu, 1>::from_floats([1.0, 2.0, 3.0], &device)
                .sum()
                .into_scalar()
        }
    };
    match probe::quietly(first_op) {
        Some(sum) if (sum - 6.0).abs() < 1e-6 => Ok(Selected::Cuda(device)),
        Some(sum) => Err(BackendError::NoGpu(format!(
            "test op returned {sum} instead of 6"
        ))),
        None => Err(BackendError::NoGpu("the first CUDA op failed".to_string())),
    }
}

/// Finding a GPU without touching CUDA (whose failures panic), using only the file system.
mod probe {
    use std::path::{Path, PathBuf};

    /// Directories where the NVIDIA driver's `libcuda.so.1` is usually installed.
    const LIB_DIRS: &[&str] = &[
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
        "/usr/local/nvidia/lib64",
        "/usr/local/cuda/lib64",
        "/usr/lib/wsl/lib",
    ];

    /// Ok when a driver is loaded and `libcuda.so.1` can be found; otherwise the reason.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(super) fn driver_present() -> Result<(), String> {
        let driver = ["/proc/driver/nvidia/version", "/dev/nvidiactl", "/dev/dxg"]
            .iter()
            .any(|p| Path::new(p).exists());
        if !driver {
            return Err("no NVIDIA driver loaded".to_string());
        }
        let from_env = std::env::var_os("LD_LIBRARY_PATH")
            .map(|paths| std::env::split_paths(&paths).collect::<Vec<PathBuf>>())
            .unwrap_or_default();
        let found = from_env
            .iter()
            .map(PathBuf::as_path)
            .chain(LIB_DIRS.iter().map(Path::new))
            .any(|dir| dir.join("libcuda.so.1").exists() || dir.join("libcuda.so").exists());
        if found {
            Ok(())
        } else {
            Err("libcuda.so.1 not found".to_string())
        }
    }

    /// Runs `f`, turning a panic into `None` without printing the panic message.
    #[cfg_attr(not(feature = "cuda"), allow(dead_code))]
    pub(super) fn quietly<T>(f: impl FnOnce() -> T) -> Option<T> {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
        std::panic::set_hook(previous);
        result.ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{ElementConversion, Tensor};

    #[test]
    fn parses_device_flags() {
        assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
        assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
        assert_eq!("cuda".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cuda);
        assert!(matches!(
            "tpu".parse::<DeviceChoice>(),
            Err(BackendError::UnknownDevice(s)) if s == "tpu"
        ));
        for choice in [DeviceChoice::Auto, DeviceChoice::Cpu, DeviceChoice::Cuda] {
            assert_eq!(choice.to_string().parse::<DeviceChoice>().unwrap(), choice);
            let json = serde_json::to_string(&choice).unwrap();
            assert_eq!(json, format!("\"{choice}\""));
            assert_eq!(serde_json::from_str::<DeviceChoice>(&json).unwrap(), choice);
        }
    }

    #[test]
    fn cpu_is_always_available() {
        let selected = select(DeviceChoice::Cpu).unwrap();
        assert!(selected.is_cpu());
        assert_eq!(selected.name(), "cpu");
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn without_the_feature_auto_falls_back_and_cuda_is_an_error() {
        assert!(select(DeviceChoice::Auto).unwrap().is_cpu());
        assert!(matches!(
            select(DeviceChoice::Cuda),
            Err(BackendError::CudaNotBuilt)
        ));
    }

    #[test]
    fn quietly_turns_a_panic_into_none() {
        assert_eq!(probe::quietly(|| 7), Some(7));
        assert_eq!(probe::quietly(|| -> i32 { panic!("boom") }), None);
    }

    struct SumTask;

    impl BackendTask for SumTask {
        type Output = f32;
        fn run<B: Backend>(self, device: B::Device) -> f32 {
            Tensor::<B, 1>::from_floats([1.0, 2.5], &device)
                .sum()
                .into_scalar()
                .elem()
        }
    }

    struct GradTask;

    impl TrainTask for GradTask {
        type Output = f32;
        fn run<B: AutodiffBackend>(self, device: B::Device) -> f32 {
            let x = Tensor::<B, 1>::from_floats([3.0], &device).require_grad();
            let grads = (x.clone() * x.clone()).sum().backward();
            x.grad(&grads)
                .map(|g| g.into_scalar().elem())
                .unwrap_or(f32::NAN)
        }
    }

    #[test]
    fn runs_generic_tasks_on_the_selected_backend() {
        let selected = select(DeviceChoice::Cpu).unwrap();
        assert_eq!(selected.run(SumTask), 3.5);
        assert_eq!(selected.run_train(GradTask), 6.0);
    }
}
