//! The boundary between Rust and generated code: the argument block a kernel receives, the
//! call into a finalized function, and the `extern "C"` helpers generated code calls (GEMM
//! through faer, the sequential prox operators, transcendental functions).
//!
//! This is the only module of the crate with `unsafe` code. Its contract: a kernel is called
//! only with an argument block whose every pointer addresses a live allocation of at least
//! `len` elements of the kernel's scalar type, after the caller has checked every extent the
//! kernel reads against those lengths ([`super::JitBackend`] does, before each call), and only
//! while the `JITModule` that owns the code is alive (the backend owns both).
#![allow(unsafe_code)]

use cranelift_jit::JITModule;
use cranelift_module::FuncId;
use faer::{Accum, MatMut, MatRef};

use crate::gauge;
use crate::kir::Unary;

/// One buffer as generated code sees it. Field offsets are part of the ABI
/// ([`BufferArg::DATA`] …): the translator loads through them.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub(crate) struct BufferArg {
    /// First element.
    pub data: *mut u8,
    /// Number of elements.
    pub len: u64,
    /// Elements between consecutive rows of a matrix (its number of columns).
    pub row_stride: u64,
    /// Row index of each observed entry (observed inputs only, else null).
    pub pattern_row: *const u32,
    /// Column index of each observed entry (observed inputs only, else null).
    pub pattern_col: *const u32,
}

impl BufferArg {
    pub const DATA: i32 = 0;
    pub const ROW_STRIDE: i32 = 16;
    pub const PATTERN_ROW: i32 = 24;
    pub const PATTERN_COL: i32 = 32;
    pub const SIZE: i64 = 40;
}

/// What a generated kernel receives: one [`BufferArg`] per buffer of the program (by id) and
/// the extent of every dimension (by id).
#[repr(C)]
pub(crate) struct KernelArgs {
    pub buffers: *const BufferArg,
    pub dims: *const u64,
}

impl KernelArgs {
    pub const BUFFERS: i32 = 0;
    pub const DIMS: i32 = 8;
}

/// The signature of every generated kernel: status 0 on success.
type KernelFn = extern "C" fn(*const KernelArgs) -> i32;

/// Finalized machine code and the module that owns it: the entry points cannot outlive the
/// memory they point into, because they are only reachable through this value, and the
/// memory is freed when it is dropped.
pub(crate) struct JitCode {
    module: Option<JITModule>,
    entries: Vec<*const u8>,
}

impl JitCode {
    /// Takes a module whose definitions are finalized, and the ids of its kernels (every
    /// one defined with the kernel ABI's signature), in kernel order.
    pub fn new(module: JITModule, kernels: &[FuncId]) -> JitCode {
        let entries = kernels
            .iter()
            .map(|id| module.get_finalized_function(*id))
            .collect();
        JitCode {
            module: Some(module),
            entries,
        }
    }

    /// Calls kernel `index`. The caller guarantees that `buffers` and `dims` describe live
    /// allocations whose lengths agree with `dims` for every buffer the kernel touches
    /// (the backend checks them before each call).
    pub fn call(&self, index: usize, buffers: &[BufferArg], dims: &[u64]) -> Option<i32> {
        let code = *self.entries.get(index)?;
        let args = KernelArgs {
            buffers: buffers.as_ptr(),
            dims: dims.as_ptr(),
        };
        // SAFETY: `code` is a finalized function of the module this value owns, compiled
        // with exactly `KernelFn`'s signature (translate::kernel_signature); the arguments
        // satisfy the module contract above.
        let kernel = unsafe { std::mem::transmute::<*const u8, KernelFn>(code) };
        Some(kernel(&args))
    }
}

impl Drop for JitCode {
    fn drop(&mut self) {
        self.entries.clear();
        if let Some(module) = self.module.take() {
            // SAFETY: the only pointers into the module's memory were `entries`, cleared
            // above; nothing else can call into it.
            unsafe { module.free_memory() };
        }
    }
}

/// Reads an i64 flag argument.
fn flag(x: i64) -> bool {
    x != 0
}

macro_rules! gemm_helper {
    ($name:ident, $t:ty) => {
        /// `dst = alpha·op(a)·op(b)` (`+ dst` when accumulating) through faer; status 0, or 1
        /// when the shapes disagree (generated code passes the kernel's own extents, so this
        /// is a defence, not a path).
        #[allow(clippy::too_many_arguments)]
        pub(crate) extern "C" fn $name(
            dst: *mut $t,
            a: *const $t,
            a_rows: i64,
            a_cols: i64,
            trans_a: i64,
            b: *const $t,
            b_rows: i64,
            b_cols: i64,
            trans_b: i64,
            accumulate: i64,
            alpha: f64,
        ) -> i32 {
            let dims = |r: i64, c: i64| (r.max(0) as usize, c.max(0) as usize);
            let (ar, ac) = dims(a_rows, a_cols);
            let (br, bc) = dims(b_rows, b_cols);
            let (p, q) = if flag(trans_a) { (ac, ar) } else { (ar, ac) };
            let (q2, s) = if flag(trans_b) { (bc, br) } else { (br, bc) };
            if q != q2 {
                return 1;
            }
            let empty = |n: usize| n == 0;
            // SAFETY: the module contract: the pointers address buffers of these extents
            // (row-major, contiguous), and dst aliases neither operand (the validator
            // rejects a GEMM whose destination is an operand).
            let (a, b, out) = unsafe {
                (
                    if empty(ar * ac) {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(a, ar * ac)
                    },
                    if empty(br * bc) {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(b, br * bc)
                    },
                    if empty(p * s) {
                        &mut [][..]
                    } else {
                        std::slice::from_raw_parts_mut(dst, p * s)
                    },
                )
            };
            let mut lhs = MatRef::from_row_major_slice(a, ar, ac);
            if flag(trans_a) {
                lhs = lhs.transpose();
            }
            let mut rhs = MatRef::from_row_major_slice(b, br, bc);
            if flag(trans_b) {
                rhs = rhs.transpose();
            }
            let out = MatMut::from_row_major_slice_mut(out, p, s);
            let beta = if flag(accumulate) {
                Accum::Add
            } else {
                Accum::Replace
            };
            faer::linalg::matmul::matmul(
                out,
                beta,
                lhs,
                rhs,
                alpha as $t,
                faer::get_global_parallelism(),
            );
            0
        }
    };
}

gemm_helper!(hfc_gemm_f64, f64);
gemm_helper!(hfc_gemm_f32, f32);

macro_rules! column_prox_helper {
    ($name:ident, $t:ty, $prox:expr) => {
        /// A sequential prox on one strided column, in place (through the f64 definition).
        pub(crate) extern "C" fn $name(column: *mut $t, len: i64, stride: i64, weight: f64) {
            let (len, stride) = (len.max(0) as usize, stride.max(1) as usize);
            if len == 0 {
                return;
            }
            // SAFETY: the module contract: `column` is element (0, i) of a row-major matrix
            // with `len` rows and `stride` columns, so the span below is inside it.
            let span = unsafe { std::slice::from_raw_parts_mut(column, (len - 1) * stride + 1) };
            let input: Vec<f64> = span.iter().step_by(stride).map(|v| *v as f64).collect();
            let mut output = input.clone();
            let prox: fn(&[f64], &mut [f64], f64) = $prox;
            prox(&input, &mut output, weight);
            for (slot, value) in span.iter_mut().step_by(stride).zip(output) {
                *slot = value as $t;
            }
        }
    };
}

column_prox_helper!(hfc_prox_tv_f64, f64, |x, out, w| gauge::tv_prox(x, w, out));
column_prox_helper!(hfc_prox_tv_f32, f32, |x, out, w| gauge::tv_prox(x, w, out));
column_prox_helper!(hfc_prox_linf_f64, f64, |_, out, w| gauge::linf_prox(out, w));
column_prox_helper!(hfc_prox_linf_f32, f32, |_, out, w| gauge::linf_prox(out, w));

macro_rules! unary_helper {
    ($name:ident, $op:expr) => {
        /// A transcendental elementwise function, by its definition in [`Unary::apply`].
        pub(crate) extern "C" fn $name(x: f64) -> f64 {
            $op.apply(x)
        }
    };
}

unary_helper!(hfc_exp, Unary::Exp);
unary_helper!(hfc_log1p, Unary::Log1p);
unary_helper!(hfc_sigmoid, Unary::Sigmoid);
unary_helper!(hfc_softplus, Unary::Softplus);
unary_helper!(hfc_xlogx, Unary::XLogX);

/// Every helper, by the symbol generated code imports.
pub(crate) fn symbols() -> Vec<(&'static str, *const u8)> {
    vec![
        ("hfc_gemm_f64", hfc_gemm_f64 as *const u8),
        ("hfc_gemm_f32", hfc_gemm_f32 as *const u8),
        ("hfc_prox_tv_f64", hfc_prox_tv_f64 as *const u8),
        ("hfc_prox_tv_f32", hfc_prox_tv_f32 as *const u8),
        ("hfc_prox_linf_f64", hfc_prox_linf_f64 as *const u8),
        ("hfc_prox_linf_f32", hfc_prox_linf_f32 as *const u8),
        ("hfc_exp", hfc_exp as *const u8),
        ("hfc_log1p", hfc_log1p as *const u8),
        ("hfc_sigmoid", hfc_sigmoid as *const u8),
        ("hfc_softplus", hfc_softplus as *const u8),
        ("hfc_xlogx", hfc_xlogx as *const u8),
    ]
}
