//! The CPU back end: kernel IR → Cranelift IR → native code, JIT-compiled once per program.
//!
//! ```text
//! Program ─ translate::translate_kernel (one function per kernel) ─> CLIF ─ JITModule ─>
//!   JitCode (entry points + the memory that holds them) ─ JitBackend::run ─> extern "C" call
//! ```
//!
//! Generated code does the model-specific work (elementwise loss and gradient maps, sums,
//! sampled and sparse products, column gauges and prox); dense products go to faer through
//! an imported helper (`hfc_gemm_f64`), and the sequential prox algorithms (Condat's TV,
//! the ℓ∞ prox) are helpers too (`abi.rs`). The backend owns every buffer as one contiguous
//! row-major allocation, checks extents before each call and hands generated code a
//! `#[repr(C)]` block of pointers, lengths and strides. The interpreter stays the oracle:
//! every statement kind is tested against it.

mod abi;
#[cfg(test)]
mod tests;
mod translate;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use cranelift_codegen::ir::{Function, UserFuncName, types};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::{FuncId, Linkage, Module};
use ndarray::{Array1, Array2};

use crate::backend::{Backend, ExecError};
use crate::kir::{BufId, BufferKind, DimId, KernelId, Program};
use crate::value::{Observed, Value};

use abi::{BufferArg, JitCode};

/// The scalar type generated code computes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    /// 32-bit floats.
    F32,
    /// 64-bit floats (the solver's precision).
    F64,
}

impl Precision {
    /// `f32` or `f64`.
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F64 => "f64",
        }
    }

    fn elem(self) -> types::Type {
        match self {
            Precision::F32 => types::F32,
            Precision::F64 => types::F64,
        }
    }

    /// The 128-bit vector of the type (the widest Cranelift compiles on x86-64).
    fn vector(self) -> types::Type {
        match self {
            Precision::F32 => types::F32X4,
            Precision::F64 => types::F64X2,
        }
    }

    fn lanes(self) -> i64 {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 2,
        }
    }

    fn size(self) -> i64 {
        match self {
            Precision::F32 => 4,
            Precision::F64 => 8,
        }
    }
}

/// Code generation failed (a host Cranelift does not support, or a bug in the translator:
/// validated programs always translate).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CodegenError {
    /// Cranelift has no back end for this machine.
    #[error("Cranelift cannot generate code for this machine: {0}")]
    Isa(String),
    /// Cranelift rejected a generated function.
    #[error("Cranelift rejected kernel `{kernel}`: {message}")]
    Compile {
        /// The kernel.
        kernel: String,
        /// Cranelift's message.
        message: String,
    },
    /// The translator's own invariant failed.
    #[error("internal code generator error: {0}")]
    Internal(String),
}

/// What one kernel touches, for the checks before each call.
#[derive(Clone, Debug)]
struct KernelUse {
    /// Buffers read before the kernel writes them (they must hold values).
    inputs: Vec<BufId>,
    /// Buffers the kernel writes.
    outputs: Vec<BufId>,
}

fn kernel_use(program: &Program, kernel: KernelId) -> KernelUse {
    let mut inputs = Vec::new();
    let mut outputs: Vec<BufId> = Vec::new();
    for stmt in &program.kernel(kernel).body {
        for read in stmt.reads() {
            if !outputs.contains(&read) && !inputs.contains(&read) {
                inputs.push(read);
            }
        }
        if !outputs.contains(&stmt.dst()) {
            outputs.push(stmt.dst());
        }
    }
    KernelUse { inputs, outputs }
}

/// A program compiled to native code.
pub struct CpuModule {
    code: JitCode,
    uses: Vec<KernelUse>,
    clif: Vec<String>,
    precision: Precision,
    compile_seconds: f64,
}

impl CpuModule {
    /// The Cranelift IR of every kernel, as generated (before Cranelift's optimizations),
    /// each headed by the kernel's name.
    pub fn clif(&self) -> String {
        self.clif.join("\n")
    }

    /// Seconds spent translating and compiling.
    pub fn compile_seconds(&self) -> f64 {
        self.compile_seconds
    }
}

fn compile_error(kernel: &str, e: impl std::fmt::Display) -> CodegenError {
    CodegenError::Compile {
        kernel: kernel.to_string(),
        message: e.to_string(),
    }
}

/// Translates and compiles every kernel of a validated program.
pub fn compile(program: &Program, precision: Precision) -> Result<CpuModule, CodegenError> {
    let started = Instant::now();
    let mut flags = settings::builder();
    for (name, value) in [
        // The JIT links helpers by absolute address and maps code anywhere.
        ("use_colocated_libcalls", "false"),
        ("is_pic", "false"),
        ("opt_level", "speed"),
    ] {
        flags
            .set(name, value)
            .map_err(|e| CodegenError::Isa(e.to_string()))?;
    }
    let isa = cranelift_native::builder()
        .map_err(|e| CodegenError::Isa(e.to_string()))?
        .finish(settings::Flags::new(flags))
        .map_err(|e| CodegenError::Isa(e.to_string()))?;
    let mut builder = JITBuilder::with_isa(isa, cranelift_module::default_libcall_names());
    builder.symbols(abi::symbols());
    let mut module = JITModule::new(builder);
    let call_conv = module.target_config().default_call_conv;

    let mut helper_ids: HashMap<String, FuncId> = HashMap::new();
    for (name, _) in abi::symbols() {
        let sig = translate::helper_signature(name, call_conv);
        let id = module
            .declare_function(name, Linkage::Import, &sig)
            .map_err(|e| compile_error(name, e))?;
        helper_ids.insert(name.to_string(), id);
    }

    let mut context = module.make_context();
    let mut builder_context = FunctionBuilderContext::new();
    let mut ids = Vec::new();
    let mut clif = Vec::new();
    for (index, kernel) in program.kernels.iter().enumerate() {
        let mut func = Function::with_name_signature(
            UserFuncName::user(0, index as u32),
            translate::kernel_signature(call_conv),
        );
        let mut imports = HashMap::new();
        for name in translate::helpers_of(kernel, precision) {
            let id = helper_ids.get(&name).copied().ok_or_else(|| {
                CodegenError::Internal(format!("no helper `{name}` is registered"))
            })?;
            imports.insert(name, module.declare_func_in_func(id, &mut func));
        }
        translate::translate_kernel(
            program,
            kernel,
            precision,
            &mut func,
            &mut builder_context,
            &imports,
            module.target_config(),
        )?;
        clif.push(format!("; kernel {}\n{}", kernel.name, func.display()));
        let symbol = format!("hfc_kernel_{index}_{}", kernel.name);
        let id = module
            .declare_function(&symbol, Linkage::Local, &func.signature)
            .map_err(|e| compile_error(&kernel.name, e))?;
        context.func = func;
        module
            .define_function(id, &mut context)
            .map_err(|e| compile_error(&kernel.name, format!("{e:?}")))?;
        module.clear_context(&mut context);
        ids.push(id);
    }
    module
        .finalize_definitions()
        .map_err(|e| compile_error("(all)", e))?;
    let uses = (0..program.kernels.len())
        .map(|k| kernel_use(program, KernelId(k as u32)))
        .collect();
    Ok(CpuModule {
        code: JitCode::new(module, &ids),
        uses,
        clif,
        precision,
        compile_seconds: started.elapsed().as_secs_f64(),
    })
}

/// The Cranelift IR the CPU back end generates for a program (f64).
pub fn emit_clif(program: &Program) -> Result<String, CodegenError> {
    Ok(compile(program, Precision::F64)?.clif())
}

/// A buffer's elements in the back end's precision.
#[derive(Clone, Debug)]
enum Storage {
    F64(Vec<f64>),
    F32(Vec<f32>),
}

impl Storage {
    fn zeros(precision: Precision, len: usize) -> Storage {
        match precision {
            Precision::F64 => Storage::F64(vec![0.0; len]),
            Precision::F32 => Storage::F32(vec![0.0; len]),
        }
    }

    /// Replaces the contents, reusing the allocation (the solver sets the same buffers
    /// every iteration).
    fn assign(&mut self, precision: Precision, values: impl Iterator<Item = f64>) {
        match (precision, &mut *self) {
            (Precision::F64, Storage::F64(v)) => {
                v.clear();
                v.extend(values);
            }
            (Precision::F32, Storage::F32(v)) => {
                v.clear();
                v.extend(values.map(|x| x as f32));
            }
            (Precision::F64, _) => *self = Storage::F64(values.collect()),
            (Precision::F32, _) => *self = Storage::F32(values.map(|x| x as f32).collect()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Storage::F64(v) => v.len(),
            Storage::F32(v) => v.len(),
        }
    }

    fn to_f64(&self) -> Vec<f64> {
        match self {
            Storage::F64(v) => v.clone(),
            Storage::F32(v) => v.iter().map(|x| *x as f64).collect(),
        }
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        match self {
            Storage::F64(v) => v.as_mut_ptr().cast(),
            Storage::F32(v) => v.as_mut_ptr().cast(),
        }
    }
}

/// The sparsity pattern of an observed input.
#[derive(Clone, Debug)]
struct Pattern {
    rows: usize,
    cols: usize,
    row: Vec<u32>,
    col: Vec<u32>,
}

/// The JIT back end: a program's kernels compiled to native code, its buffers in host memory.
pub struct JitBackend {
    program: Arc<Program>,
    module: CpuModule,
    extents: Vec<Option<usize>>,
    storage: Vec<Storage>,
    patterns: Vec<Option<Pattern>>,
    /// Whether a buffer holds a value at the current extents.
    valid: Vec<bool>,
}

impl JitBackend {
    /// Compiles a validated program (f64, the solver's precision).
    pub fn new(program: &Program) -> Result<JitBackend, CodegenError> {
        JitBackend::with_precision(program, Precision::F64)
    }

    /// Compiles a validated program to compute in `precision`.
    pub fn with_precision(
        program: &Program,
        precision: Precision,
    ) -> Result<JitBackend, CodegenError> {
        let module = compile(program, precision)?;
        let n = program.buffers.len();
        Ok(JitBackend {
            program: Arc::new(program.clone()),
            module,
            extents: program.initial_extents(),
            storage: vec![Storage::zeros(precision, 0); n],
            patterns: vec![None; n],
            valid: vec![false; n],
        })
    }

    /// The compiled module (its CLIF and compile time).
    pub fn module(&self) -> &CpuModule {
        &self.module
    }

    fn name(&self, id: BufId) -> String {
        self.program.buffer(id).name.clone()
    }

    /// The buffer's shape at the current extents (`None` while a dimension is unbound).
    fn shape(&self, id: BufId) -> Option<Vec<usize>> {
        self.program
            .buffer(id)
            .shape
            .iter()
            .map(|d| self.extents[d.0 as usize])
            .collect()
    }

    fn expected(&self, id: BufId) -> Result<Vec<usize>, ExecError> {
        self.shape(id).ok_or_else(|| {
            ExecError::Backend(format!(
                "buffer %{} has a dimension with no extent bound",
                self.name(id)
            ))
        })
    }

    fn shape_error(&self, id: BufId, found: Vec<usize>) -> ExecError {
        ExecError::Shape {
            name: self.name(id),
            expected: self
                .shape(id)
                .unwrap_or_default()
                .into_iter()
                .collect::<Vec<_>>(),
            found,
        }
    }

    /// The pattern of an observed buffer, checked against the current extents.
    fn check_pattern(&self, id: BufId) -> Result<(), ExecError> {
        let BufferKind::Observed { rows, cols } = self.program.buffer(id).kind else {
            return Ok(());
        };
        let Some(pattern) = &self.patterns[id.0 as usize] else {
            return Err(ExecError::Unset(self.name(id)));
        };
        let extent = |d: DimId| self.extents[d.0 as usize];
        if extent(rows) != Some(pattern.rows) || extent(cols) != Some(pattern.cols) {
            return Err(self.shape_error(id, vec![pattern.rows, pattern.cols]));
        }
        Ok(())
    }
}

impl Backend for JitBackend {
    fn name(&self) -> &'static str {
        "jit"
    }

    fn bind_dim(&mut self, dim: DimId, extent: usize) {
        for (scaled, extent) in self.program.scaled_extents(dim, extent) {
            self.bind_dim(scaled, extent);
        }
        if self.extents[dim.0 as usize] == Some(extent) {
            return;
        }
        self.extents[dim.0 as usize] = Some(extent);
        // Values shaped by the old extent are gone, as in the interpreter (reading one is
        // an error until it is set or computed again).
        for (k, buffer) in self.program.buffers.iter().enumerate() {
            if buffer.shape.contains(&dim) {
                self.valid[k] = false;
            }
        }
    }

    fn set(&mut self, buffer: BufId, value: Value) -> Result<(), ExecError> {
        let expected = self.expected(buffer)?;
        if value.shape() != expected {
            return Err(self.shape_error(buffer, value.shape()));
        }
        let precision = self.module.precision;
        let k = buffer.0 as usize;
        let storage = &mut self.storage[k];
        match value {
            Value::Scalar(s) => storage.assign(precision, std::iter::once(s)),
            Value::Vector(v) => storage.assign(precision, v.iter().copied()),
            Value::Matrix(m) => storage.assign(precision, m.iter().copied()),
            Value::Observed(o) => {
                // Generated code indexes rows of the factors by the pattern: every index
                // must be inside the matrix the pattern claims.
                if o.row.iter().any(|i| *i as usize >= o.rows)
                    || o.col.iter().any(|j| *j as usize >= o.cols)
                {
                    return Err(ExecError::Backend(format!(
                        "buffer %{}: an observed entry lies outside its {} × {} matrix",
                        self.name(buffer),
                        o.rows,
                        o.cols
                    )));
                }
                storage.assign(precision, o.values.iter().copied());
                self.patterns[k] = Some(Pattern {
                    rows: o.rows,
                    cols: o.cols,
                    row: o.row,
                    col: o.col,
                });
            }
        }
        self.valid[k] = true;
        Ok(())
    }

    fn get(&self, buffer: BufId) -> Result<Value, ExecError> {
        let k = buffer.0 as usize;
        if !self.valid[k] {
            return Err(ExecError::Unset(self.name(buffer)));
        }
        let shape = self.expected(buffer)?;
        let values = self.storage[k].to_f64();
        Ok(match (shape.as_slice(), &self.patterns[k]) {
            ([], _) => Value::Scalar(values.first().copied().unwrap_or(0.0)),
            ([_], Some(p)) => Value::Observed(Observed {
                rows: p.rows,
                cols: p.cols,
                row: p.row.clone(),
                col: p.col.clone(),
                values: Array1::from(values),
            }),
            ([_], None) => Value::Vector(Array1::from(values)),
            ([rows, cols], _) => Value::Matrix(
                Array2::from_shape_vec((*rows, *cols), values)
                    .map_err(|e| ExecError::Backend(e.to_string()))?,
            ),
            _ => return Err(self.shape_error(buffer, shape)),
        })
    }

    fn run(&mut self, kernel: KernelId) -> Result<(), ExecError> {
        let index = kernel.0 as usize;
        let Some(uses) = self.module.uses.get(index).cloned() else {
            return Err(ExecError::Backend(format!("no kernel {index}")));
        };
        // Every check happens here, before generated code runs: inputs hold values of the
        // current extents, patterns fit their matrices, outputs are allocated.
        for id in &uses.inputs {
            if !self.valid[id.0 as usize] {
                return Err(ExecError::Unset(self.name(*id)));
            }
            let len: usize = self.expected(*id)?.iter().product();
            if self.storage[id.0 as usize].len() != len {
                return Err(self.shape_error(*id, vec![self.storage[id.0 as usize].len()]));
            }
            self.check_pattern(*id)?;
        }
        for id in &uses.outputs {
            let len: usize = self.expected(*id)?.iter().product();
            if self.storage[id.0 as usize].len() != len {
                self.storage[id.0 as usize] = Storage::zeros(self.module.precision, len);
            }
        }
        let mut args = Vec::with_capacity(self.storage.len());
        for (k, buffer) in self.program.buffers.iter().enumerate() {
            let row_stride = match buffer.shape.as_slice() {
                [_, cols] => self.extents[cols.0 as usize].unwrap_or(0) as u64,
                _ => 1,
            };
            let (pattern_row, pattern_col) = match &self.patterns[k] {
                Some(p) => (p.row.as_ptr(), p.col.as_ptr()),
                None => (std::ptr::null(), std::ptr::null()),
            };
            let storage = &mut self.storage[k];
            args.push(BufferArg {
                len: storage.len() as u64,
                data: storage.as_mut_ptr(),
                row_stride,
                pattern_row,
                pattern_col,
            });
        }
        let dims: Vec<u64> = self.extents.iter().map(|e| e.unwrap_or(0) as u64).collect();
        match self.module.code.call(index, &args, &dims) {
            Some(0) => {}
            Some(status) => {
                return Err(ExecError::Backend(format!(
                    "kernel `{}` failed with status {status}",
                    self.program.kernel(kernel).name
                )));
            }
            None => return Err(ExecError::Backend(format!("no kernel {index}"))),
        }
        for id in uses.outputs {
            self.valid[id.0 as usize] = true;
        }
        Ok(())
    }

    fn info(&self) -> serde_json::Value {
        serde_json::json!({
            "precision": self.module.precision.name(),
            "compile_seconds": self.module.compile_seconds,
            "kernels": self.program.kernels.len(),
        })
    }
}
