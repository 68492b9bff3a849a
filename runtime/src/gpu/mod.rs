//! The GPU back end: kernel programs as WGSL compute shaders ([`wgsl`]), run through wgpu
//! ([`GpuBackend`]) on Vulkan, GL, Metal or DX12, or on Mesa's software Vulkan device
//! (lavapipe) where no GPU exists.
//!
//! ```text
//! kir::Program ─ wgsl::shaders(precision) ─> Shaders (WGSL text, bindings, passes)
//!              ─ GpuBackend::new(context) ─> pipelines (once) ─ Backend::{set, run, get}
//! ```
//!
//! The scalar type is a parameter ([`Precision`]): f32 by default (portable WGSL), f64 where
//! the adapter offers `SHADER_F64`. Iterates computed in f32 are not certified as they are:
//! see [`crate::certify`] for the f64 recomputation the CLI does before it says `exact`.

pub mod device;
pub mod wgsl;

pub use device::{GpuBackend, GpuContext};
pub use wgsl::emit_wgsl;

/// The scalar type of the shaders.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// 32-bit floats (every adapter).
    #[default]
    F32,
    /// 64-bit floats (adapters with `SHADER_F64`).
    F64,
}

impl Precision {
    /// The WGSL type (`f32`, `f64`), also its name on the command line.
    pub fn wgsl(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    /// Parses `f32` or `f64`.
    pub fn parse(text: &str) -> Option<Precision> {
        match text {
            "f32" => Some(Precision::F32),
            "f64" => Some(Precision::F64),
            _ => None,
        }
    }

    /// Bytes per scalar.
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }
}

/// A fault of the GPU back end.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    /// No adapter could be opened.
    #[error(
        "no GPU adapter found ({0}); install a GPU driver, or Mesa's software Vulkan driver (`apt-get install mesa-vulkan-drivers libvulkan1`), or choose an adapter with HFC_GPU_ADAPTER=<part of its name> (WGPU_BACKEND=vulkan|gl picks the API)"
    )]
    NoAdapter(String),
    /// `--precision f64` on an adapter without `SHADER_F64`.
    #[error(
        "the adapter `{0}` has no 64-bit floats in shaders (SHADER_F64); use --precision f32 or another adapter (HFC_GPU_ADAPTER)"
    )]
    NoF64(String),
    /// The device could not be opened or failed.
    #[error("GPU device error: {0}")]
    Device(String),
    /// A buffer larger than one storage binding may be.
    #[error(
        "buffer %{name} needs {bytes} bytes, more than the adapter's limit of {limit} bytes per storage binding (use --precision f32, a smaller problem, or another adapter)"
    )]
    TooLarge {
        /// The buffer.
        name: String,
        /// Bytes it needs.
        bytes: u64,
        /// The adapter's `max_storage_buffer_binding_size`.
        limit: u64,
    },
    /// A constant the scalar type cannot hold.
    #[error("the constant {0} cannot be represented in {1}")]
    Constant(f64, &'static str),
    /// Code generation failed (a program the writer does not support).
    #[error("WGSL generation failed: {0}")]
    Codegen(String),
    /// A generated shader failed validation (a bug of the writer).
    #[error("generated shader `{label}` is invalid: {message}")]
    Shader {
        /// The shader's label.
        label: String,
        /// naga's or wgpu's message.
        message: String,
    },
}

/// Parses and validates a WGSL module with naga (the checks wgpu makes before it compiles a
/// shader), with 64-bit floats allowed for f64 shaders. Returns the module.
pub fn validate_wgsl(
    label: &str,
    source: &str,
    precision: Precision,
) -> Result<wgpu::naga::Module, GpuError> {
    use wgpu::naga::valid::{Capabilities, ValidationFlags, Validator};
    let fail = |message: String| GpuError::Shader {
        label: label.to_string(),
        message,
    };
    let module =
        wgpu::naga::front::wgsl::parse_str(source).map_err(|e| fail(e.emit_to_string(source)))?;
    let capabilities = match precision {
        Precision::F32 => Capabilities::empty(),
        Precision::F64 => Capabilities::FLOAT64,
    };
    Validator::new(ValidationFlags::all(), capabilities)
        .validate(&module)
        .map_err(|e| fail(format!("{:?}", e.into_inner())))?;
    Ok(module)
}

#[cfg(test)]
mod tests;
