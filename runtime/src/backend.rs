//! The interface between the solver and a back end that executes kernel programs.

use crate::kir::{BufId, DimId, KernelId};
use crate::value::Value;

/// A fault while executing a kernel.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExecError {
    /// A buffer was read before it had a value.
    #[error("buffer %{0} has no value")]
    Unset(String),
    /// A value of the wrong shape was bound or produced.
    #[error("buffer %{name} has shape {found:?}, expected {expected:?}")]
    Shape {
        /// The buffer.
        name: String,
        /// What it should be.
        expected: Vec<usize>,
        /// What it is.
        found: Vec<usize>,
    },
    /// The back end itself failed.
    #[error("{0}")]
    Backend(String),
}

/// Executes a validated kernel program. Values go in and out through [`Value`]; a back end
/// may keep them anywhere (host memory, GPU buffers) between calls.
pub trait Backend {
    /// Its name, as the report records it (`interp`, `jit`, `gpu`).
    fn name(&self) -> &'static str;
    /// Sets a dimension's extent (data dimensions once, the size r and probe width as the
    /// solver changes them).
    fn bind_dim(&mut self, dim: DimId, extent: usize);
    /// Binds a buffer's value.
    fn set(&mut self, buffer: BufId, value: Value) -> Result<(), ExecError>;
    /// Reads a buffer's value.
    fn get(&self, buffer: BufId) -> Result<Value, ExecError>;
    /// Runs a kernel.
    fn run(&mut self, kernel: KernelId) -> Result<(), ExecError>;
    /// What the report records about it besides its name (the JIT's compile time, the GPU's
    /// adapter); `null` when there is nothing to say.
    fn info(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
}
