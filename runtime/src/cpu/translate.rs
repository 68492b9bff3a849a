//! Kernel IR → Cranelift IR: one function per kernel, one `translate_<stmt>` method per
//! statement kind (the structure of Cranelift's JIT demo).
//!
//! Every generated function has the signature `extern "C" fn(*const KernelArgs) -> i32`
//! ([`super::abi`]). Its entry block loads the data pointer, row stride and pattern of every
//! buffer the kernel touches and the extent of every dimension, once: the backend never moves
//! a buffer during a call. Statements become counted loops; contiguous loops (elementwise
//! maps, sums, the dot products of sampled products, the row updates of sparse products) run
//! a 128-bit vector body (f64x2 or f32x4, the widest Cranelift offers on x86-64) and a scalar
//! tail. Column operations walk strided memory and stay scalar. Sums accumulate in the order
//! the interpreter's definitions do where it is sequential (column gauges, prox), so those
//! agree bit for bit; vectorized sums agree to rounding.

use std::collections::HashMap;

use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{
    AbiParam, Block, BlockArg, FuncRef, Function, InstBuilder, MemFlagsData, Signature, Type,
    Value, types,
};
use cranelift_codegen::isa::{CallConv, TargetFrontendConfig};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use super::abi::{BufferArg, KernelArgs};
use super::{CodegenError, Precision};
use crate::kir::{Binary, BufId, DimId, Expr, GaugeAtom, Kernel, Program, Stmt, Unary};

/// A host function generated code calls, by the symbol it imports.
pub(crate) fn helper_signature(name: &str, call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    let ptr = types::I64;
    if name.starts_with("hfc_gemm") {
        // dst, a, a_rows, a_cols, trans_a, b, b_rows, b_cols, trans_b, accumulate, alpha
        for _ in 0..10 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.params.push(AbiParam::new(types::F64));
        sig.returns.push(AbiParam::new(types::I32));
    } else if name.starts_with("hfc_prox") {
        // column, len, stride, weight
        for _ in 0..3 {
            sig.params.push(AbiParam::new(ptr));
        }
        sig.params.push(AbiParam::new(types::F64));
    } else {
        sig.params.push(AbiParam::new(types::F64));
        sig.returns.push(AbiParam::new(types::F64));
    }
    sig
}

/// The symbol of a transcendental unary operation's helper, or `None` when Cranelift has an
/// instruction for it.
fn unary_helper(op: Unary) -> Option<&'static str> {
    match op {
        Unary::Exp => Some("hfc_exp"),
        Unary::Log1p => Some("hfc_log1p"),
        Unary::Sigmoid => Some("hfc_sigmoid"),
        Unary::Softplus => Some("hfc_softplus"),
        Unary::XLogX => Some("hfc_xlogx"),
        Unary::Neg | Unary::Abs | Unary::Square | Unary::Sqrt | Unary::Step => None,
    }
}

fn expr_helpers(expr: &Expr, out: &mut Vec<String>) {
    match expr {
        Expr::Buf(_) | Expr::Const(_) => {}
        Expr::Unary(op, a) => {
            if let Some(name) = unary_helper(*op) {
                out.push(name.to_string());
            }
            expr_helpers(a, out);
        }
        Expr::Binary(_, a, b) => {
            expr_helpers(a, out);
            expr_helpers(b, out);
        }
    }
}

/// The helpers a kernel calls, each once, in order of first use.
pub(crate) fn helpers_of(kernel: &Kernel, precision: Precision) -> Vec<String> {
    let suffix = precision.name();
    let mut out = Vec::new();
    for stmt in &kernel.body {
        match stmt {
            Stmt::Gemm { .. } => out.push(format!("hfc_gemm_{suffix}")),
            Stmt::Map { expr, .. } | Stmt::Sum { expr, .. } => expr_helpers(expr, &mut out),
            Stmt::ColumnProx { gauge, .. } => {
                for (_, atom) in &gauge.terms {
                    match atom {
                        GaugeAtom::Tv => out.push(format!("hfc_prox_tv_{suffix}")),
                        GaugeAtom::Linf => out.push(format!("hfc_prox_linf_{suffix}")),
                        GaugeAtom::L1 | GaugeAtom::L2 => {}
                    }
                }
            }
            Stmt::Sample { .. }
            | Stmt::KhatriRao { .. }
            | Stmt::KhatriRaoAdjoint { .. }
            | Stmt::Copy { .. }
            | Stmt::SpMM { .. }
            | Stmt::ColumnGauge { .. } => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|name| seen.insert(name.clone()));
    out
}

fn uses_helper(expr: &Expr) -> bool {
    let mut out = Vec::new();
    expr_helpers(expr, &mut out);
    !out.is_empty()
}

/// Translates one kernel into `func` (whose signature is the kernel ABI's and into which
/// `imports` were declared).
pub(crate) fn translate_kernel(
    program: &Program,
    kernel: &Kernel,
    precision: Precision,
    func: &mut Function,
    context: &mut FunctionBuilderContext,
    imports: &HashMap<String, FuncRef>,
    target: TargetFrontendConfig,
) -> Result<(), CodegenError> {
    let builder = FunctionBuilder::new(func, context);
    let mut translator = KernelTranslator {
        program,
        precision,
        builder,
        imports,
        data: HashMap::new(),
        row_stride: HashMap::new(),
        pattern: HashMap::new(),
        extent: HashMap::new(),
        fail: None,
    };
    translator.translate(kernel)?;
    translator.builder.seal_all_blocks();
    translator.builder.finalize(target);
    Ok(())
}

/// Vector or scalar: the two shapes an elementwise expression is evaluated in.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Width {
    Scalar,
    Vector,
}

struct KernelTranslator<'a> {
    program: &'a Program,
    precision: Precision,
    builder: FunctionBuilder<'a>,
    imports: &'a HashMap<String, FuncRef>,
    data: HashMap<BufId, Value>,
    row_stride: HashMap<BufId, Value>,
    pattern: HashMap<BufId, (Value, Value)>,
    extent: HashMap<DimId, Value>,
    /// The block returning a helper's failure status (made on first use).
    fail: Option<Block>,
}

/// Loads that never trap (the backend checked every extent) and may be unaligned (a vector
/// of an 8-byte aligned f64 array is not 16-byte aligned in general).
fn flags() -> MemFlagsData {
    MemFlagsData::new().with_notrap()
}

impl<'a> KernelTranslator<'a> {
    fn elem(&self) -> Type {
        self.precision.elem()
    }

    fn vector(&self) -> Type {
        self.precision.vector()
    }

    fn lanes(&self) -> i64 {
        self.precision.lanes()
    }

    fn iconst(&mut self, v: i64) -> Value {
        self.builder.ins().iconst(types::I64, v)
    }

    fn fconst(&mut self, v: f64) -> Value {
        match self.precision {
            Precision::F64 => self.builder.ins().f64const(v),
            Precision::F32 => self.builder.ins().f32const(v as f32),
        }
    }

    fn splat(&mut self, v: Value) -> Value {
        let ty = self.vector();
        self.builder.ins().splat(ty, v)
    }

    fn helper(&self, name: &str) -> Result<FuncRef, CodegenError> {
        self.imports
            .get(name)
            .copied()
            .ok_or_else(|| CodegenError::Internal(format!("helper `{name}` was not imported")))
    }

    fn extent(&self, dim: DimId) -> Value {
        self.extent[&dim]
    }

    /// The extent of axis `axis` of a buffer.
    fn axis(&self, buf: BufId, axis: usize) -> Result<Value, CodegenError> {
        let shape = &self.program.buffer(buf).shape;
        shape.get(axis).map(|d| self.extent(*d)).ok_or_else(|| {
            CodegenError::Internal(format!(
                "buffer %{} has no axis {axis}",
                self.program.buffer(buf).name
            ))
        })
    }

    /// The number of elements of a buffer.
    fn count(&mut self, buf: BufId) -> Value {
        let shape = self.program.buffer(buf).shape.clone();
        let mut n = self.iconst(1);
        for d in shape {
            let e = self.extent(d);
            n = self.builder.ins().imul(n, e);
        }
        n
    }

    /// `base + index · size`.
    fn addr(&mut self, base: Value, index: Value) -> Value {
        let offset = self.builder.ins().imul_imm_s(index, self.precision.size());
        self.builder.ins().iadd(base, offset)
    }

    fn load(&mut self, base: Value, index: Value, width: Width) -> Value {
        let p = self.addr(base, index);
        let ty = match width {
            Width::Scalar => self.elem(),
            Width::Vector => self.vector(),
        };
        self.builder.ins().load(ty, flags(), p, 0)
    }

    fn store(&mut self, base: Value, index: Value, value: Value) {
        let p = self.addr(base, index);
        self.builder.ins().store(flags(), value, p, 0);
    }

    /// `for i in (start..end).step_by(step) { body(i) }`.
    fn counted_loop(
        &mut self,
        start: Value,
        end: Value,
        step: i64,
        body: &mut dyn FnMut(&mut Self, Value) -> Result<(), CodegenError>,
    ) -> Result<(), CodegenError> {
        let header = self.builder.create_block();
        let body_block = self.builder.create_block();
        let exit = self.builder.create_block();
        let var = self.builder.declare_var(types::I64);
        self.builder.def_var(var, start);
        self.builder.ins().jump(header, &[]);

        self.builder.switch_to_block(header);
        let i = self.builder.use_var(var);
        let more = self.builder.ins().icmp(IntCC::SignedLessThan, i, end);
        self.builder.ins().brif(more, body_block, &[], exit, &[]);

        self.builder.switch_to_block(body_block);
        let i = self.builder.use_var(var);
        body(self, i)?;
        let i = self.builder.use_var(var);
        let next = self.builder.ins().iadd_imm_s(i, step);
        self.builder.def_var(var, next);
        self.builder.ins().jump(header, &[]);

        self.builder.switch_to_block(exit);
        Ok(())
    }

    /// The largest multiple of the vector width not above `n`.
    fn vector_end(&mut self, n: Value) -> Value {
        let lanes = self.lanes();
        self.builder.ins().band_imm_s(n, !(lanes - 1))
    }

    /// The sum of a vector's lanes, in lane order.
    fn reduce_lanes(&mut self, v: Value) -> Value {
        let mut total = self.builder.ins().extractlane(v, 0);
        for lane in 1..self.lanes() as u8 {
            let x = self.builder.ins().extractlane(v, lane);
            total = self.builder.ins().fadd(total, x);
        }
        total
    }

    /// Jumps to the failure return when `status` is not zero.
    fn check_status(&mut self, status: Value) {
        let fail = match self.fail {
            Some(b) => b,
            None => {
                let b = self.builder.create_block();
                self.builder.append_block_param(b, types::I32);
                self.builder.set_cold_block(b);
                self.fail = Some(b);
                b
            }
        };
        let next = self.builder.create_block();
        self.builder
            .ins()
            .brif(status, fail, &[BlockArg::from(status)], next, &[]);
        self.builder.switch_to_block(next);
    }

    fn translate(&mut self, kernel: &Kernel) -> Result<(), CodegenError> {
        let entry = self.builder.create_block();
        self.builder.append_block_params_for_function_params(entry);
        self.builder.switch_to_block(entry);
        let args = self.builder.block_params(entry)[0];
        self.translate_prologue(kernel, args);
        for stmt in &kernel.body {
            self.translate_stmt(stmt)?;
        }
        let ok = self.builder.ins().iconst(types::I32, 0);
        self.builder.ins().return_(&[ok]);
        if let Some(fail) = self.fail {
            self.builder.switch_to_block(fail);
            let status = self.builder.block_params(fail)[0];
            self.builder.ins().return_(&[status]);
        }
        Ok(())
    }

    /// Loads, in the entry block, what the kernel's statements address.
    fn translate_prologue(&mut self, kernel: &Kernel, args: Value) {
        let mut buffers: Vec<BufId> = Vec::new();
        for stmt in &kernel.body {
            buffers.push(stmt.dst());
            buffers.extend(stmt.reads());
        }
        buffers.sort();
        buffers.dedup();
        let mut dims: Vec<DimId> = buffers
            .iter()
            .flat_map(|b| self.program.buffer(*b).shape.clone())
            .collect();
        for buf in &buffers {
            if let crate::kir::BufferKind::Observed { rows, cols } = self.program.buffer(*buf).kind
            {
                dims.extend([rows, cols]);
            }
        }
        dims.sort();
        dims.dedup();
        let table = self
            .builder
            .ins()
            .load(types::I64, flags(), args, KernelArgs::BUFFERS);
        let extents = self
            .builder
            .ins()
            .load(types::I64, flags(), args, KernelArgs::DIMS);
        for dim in dims {
            let e = self
                .builder
                .ins()
                .load(types::I64, flags(), extents, dim.0 as i32 * 8);
            self.extent.insert(dim, e);
        }
        for buf in buffers {
            let base = (buf.0 as i64 * BufferArg::SIZE) as i32;
            let load = |t: &mut Self, field: i32| {
                t.builder
                    .ins()
                    .load(types::I64, flags(), table, base + field)
            };
            let data = load(self, BufferArg::DATA);
            self.data.insert(buf, data);
            if self.program.buffer(buf).shape.len() == 2 {
                let stride = load(self, BufferArg::ROW_STRIDE);
                self.row_stride.insert(buf, stride);
            }
            if matches!(
                self.program.buffer(buf).kind,
                crate::kir::BufferKind::Observed { .. }
            ) {
                let row = load(self, BufferArg::PATTERN_ROW);
                let col = load(self, BufferArg::PATTERN_COL);
                self.pattern.insert(buf, (row, col));
            }
        }
    }

    fn translate_stmt(&mut self, stmt: &Stmt) -> Result<(), CodegenError> {
        match stmt {
            Stmt::Gemm {
                dst,
                a,
                trans_a,
                b,
                trans_b,
                alpha,
                accumulate,
            } => self.translate_gemm(*dst, (*a, *trans_a), (*b, *trans_b), *alpha, *accumulate),
            Stmt::Sample { dst, pattern, a, b } => self.translate_sample(*dst, *pattern, *a, *b),
            Stmt::KhatriRao { dst, a, b } => self.translate_khatri_rao(*dst, *a, *b),
            Stmt::KhatriRaoAdjoint {
                dst,
                src,
                other,
                over_fast,
            } => self.translate_khatri_rao_adjoint(*dst, *src, *other, *over_fast),
            Stmt::Copy { dst, src } => self.translate_copy(*dst, *src),
            Stmt::SpMM {
                dst,
                pattern,
                values,
                b,
                trans,
                alpha,
                accumulate,
            } => self.translate_spmm(*dst, *pattern, *values, *b, *trans, *alpha, *accumulate),
            Stmt::Map { dst, expr } => self.translate_map(*dst, expr),
            Stmt::Sum { dst, expr } => self.translate_sum(*dst, expr),
            Stmt::ColumnGauge { dst, src, gauge } => {
                self.translate_column_gauge(*dst, *src, &gauge.terms)
            }
            Stmt::ColumnProx {
                dst,
                src,
                weights,
                gauge,
            } => self.translate_column_prox(*dst, *src, *weights, gauge),
        }
    }

    /// A library GEMM through `hfc_gemm_*`; its status is checked.
    fn translate_gemm(
        &mut self,
        dst: BufId,
        (a, trans_a): (BufId, bool),
        (b, trans_b): (BufId, bool),
        alpha: f64,
        accumulate: bool,
    ) -> Result<(), CodegenError> {
        let gemm = self.helper(&format!("hfc_gemm_{}", self.precision.name()))?;
        let (a_rows, a_cols) = (self.axis(a, 0)?, self.axis(a, 1)?);
        let (b_rows, b_cols) = (self.axis(b, 0)?, self.axis(b, 1)?);
        let ta = self.iconst(trans_a as i64);
        let tb = self.iconst(trans_b as i64);
        let acc = self.iconst(accumulate as i64);
        let alpha = self.builder.ins().f64const(alpha);
        let args = [
            self.data[&dst],
            self.data[&a],
            a_rows,
            a_cols,
            ta,
            self.data[&b],
            b_rows,
            b_cols,
            tb,
            acc,
            alpha,
        ];
        let call = self.builder.ins().call(gemm, &args);
        let status = self.builder.inst_results(call)[0];
        self.check_status(status);
        Ok(())
    }

    /// The row and column of observed entry `k`.
    fn entry_index(&mut self, pattern: BufId, k: Value) -> (Value, Value) {
        let (rows, cols) = self.pattern[&pattern];
        let offset = self.builder.ins().imul_imm_s(k, 4);
        let pr = self.builder.ins().iadd(rows, offset);
        let pc = self.builder.ins().iadd(cols, offset);
        let i = self.builder.ins().uload32(flags(), pr, 0);
        let j = self.builder.ins().uload32(flags(), pc, 0);
        (i, j)
    }

    /// The address of row `row` of a matrix buffer.
    fn row_base(&mut self, buf: BufId, row: Value) -> Value {
        let stride = self.row_stride[&buf];
        let start = self.builder.ins().imul(row, stride);
        let data = self.data[&buf];
        self.addr(data, start)
    }

    /// `Σ x[t]·y[t]` for t < n over two contiguous rows: vector body, scalar tail.
    fn dot(&mut self, x: Value, y: Value, n: Value) -> Result<Value, CodegenError> {
        let zero = self.fconst(0.0);
        let zeros = self.splat(zero);
        let acc = self.builder.declare_var(self.vector());
        self.builder.def_var(acc, zeros);
        let zero_i = self.iconst(0);
        let vend = self.vector_end(n);
        self.counted_loop(zero_i, vend, self.lanes(), &mut |t, i| {
            let a = t.load(x, i, Width::Vector);
            let b = t.load(y, i, Width::Vector);
            let p = t.builder.ins().fmul(a, b);
            let s = t.builder.use_var(acc);
            let s = t.builder.ins().fadd(s, p);
            t.builder.def_var(acc, s);
            Ok(())
        })?;
        let v = self.builder.use_var(acc);
        let head = self.reduce_lanes(v);
        let total = self.builder.declare_var(self.elem());
        self.builder.def_var(total, head);
        self.counted_loop(vend, n, 1, &mut |t, i| {
            let a = t.load(x, i, Width::Scalar);
            let b = t.load(y, i, Width::Scalar);
            let p = t.builder.ins().fmul(a, b);
            let s = t.builder.use_var(total);
            let s = t.builder.ins().fadd(s, p);
            t.builder.def_var(total, s);
            Ok(())
        })?;
        Ok(self.builder.use_var(total))
    }

    /// `dst[k] = a[iₖ, :] · b[jₖ, :]`.
    fn translate_sample(
        &mut self,
        dst: BufId,
        pattern: BufId,
        a: BufId,
        b: BufId,
    ) -> Result<(), CodegenError> {
        let nnz = self.axis(dst, 0)?;
        let width = self.axis(a, 1)?;
        let zero = self.iconst(0);
        let out = self.data[&dst];
        self.counted_loop(zero, nnz, 1, &mut |t, k| {
            let (i, j) = t.entry_index(pattern, k);
            let ra = t.row_base(a, i);
            let rb = t.row_base(b, j);
            let d = t.dot(ra, rb, width)?;
            t.store(out, k, d);
            Ok(())
        })
    }

    /// `dst[q, :] = a[q / nb, :] ∘ b[q % nb, :]` for q below both `dst`'s rows and `na·nb`
    /// (the bound keeps every access in range whatever the host bound).
    fn translate_khatri_rao(&mut self, dst: BufId, a: BufId, b: BufId) -> Result<(), CodegenError> {
        let (na, nb) = (self.axis(a, 0)?, self.axis(b, 0)?);
        let width = self.axis(a, 1)?;
        let rows = self.axis(dst, 0)?;
        let full = self.builder.ins().imul(na, nb);
        let below = self.builder.ins().icmp(IntCC::UnsignedLessThan, rows, full);
        let end = self.builder.ins().select(below, rows, full);
        let zero = self.iconst(0);
        self.counted_loop(zero, end, 1, &mut |t, q| {
            // q < na·nb, so nb ≥ 1 here.
            let i = t.builder.ins().udiv(q, nb);
            let i_nb = t.builder.ins().imul(i, nb);
            let j = t.builder.ins().isub(q, i_nb);
            let (rd, ra, rb) = (t.row_base(dst, q), t.row_base(a, i), t.row_base(b, j));
            t.hadamard(rd, ra, rb, width)
        })
    }

    /// The adjoint of khatri_rao (see [`Stmt::KhatriRaoAdjoint`]), a row at a time: each
    /// destination row accumulates `src` rows times `other` rows in ascending order (the
    /// interpreter's). The loops stop where `src` ends, whatever the host bound.
    fn translate_khatri_rao_adjoint(
        &mut self,
        dst: BufId,
        src: BufId,
        other: BufId,
        over_fast: bool,
    ) -> Result<(), CodegenError> {
        let width = self.axis(src, 1)?;
        let (out_rows, other_rows) = (self.axis(dst, 0)?, self.axis(other, 0)?);
        let src_rows = self.axis(src, 0)?;
        // The row stride of the fast index in src: nb = other's rows (fast) or dst's (slow).
        let nb = if over_fast { other_rows } else { out_rows };
        let one = self.iconst(1);
        let safe_nb = self.builder.ins().umax(nb, one);
        let full_groups = self.builder.ins().udiv(src_rows, safe_nb);
        let zero = self.iconst(0);
        self.counted_loop(zero, out_rows, 1, &mut |t, q| {
            let rd = t.row_base(dst, q);
            t.fill(rd, width, 0.0)?;
            let (start, end) = if over_fast {
                // Rows q·nb … q·nb + nb − 1 of src, when group q is inside it.
                let inside = t
                    .builder
                    .ins()
                    .icmp(IntCC::UnsignedLessThan, q, full_groups);
                let zero = t.iconst(0);
                let end = t.builder.ins().select(inside, nb, zero);
                (t.iconst(0), end)
            } else {
                // Rows i·nb + q for i < na, within src.
                let na = t.builder.ins().umin(other_rows, full_groups);
                (t.iconst(0), na)
            };
            t.counted_loop(start, end, 1, &mut |t, s| {
                let (src_row, other_row) = if over_fast {
                    let q_nb = t.builder.ins().imul(q, nb);
                    (t.builder.ins().iadd(q_nb, s), s)
                } else {
                    let s_nb = t.builder.ins().imul(s, nb);
                    (t.builder.ins().iadd(s_nb, q), s)
                };
                let (rs, ro) = (t.row_base(src, src_row), t.row_base(other, other_row));
                t.add_product(rd, rs, ro, width)
            })
        })
    }

    /// `dst = src` entry by entry, up to the smaller of the two counts.
    fn translate_copy(&mut self, dst: BufId, src: BufId) -> Result<(), CodegenError> {
        let (nd, ns) = (self.count(dst), self.count(src));
        let n = self.builder.ins().umin(nd, ns);
        let (to, from) = (self.data[&dst], self.data[&src]);
        let zero = self.iconst(0);
        let vend = self.vector_end(n);
        self.counted_loop(zero, vend, self.lanes(), &mut |t, i| {
            let v = t.load(from, i, Width::Vector);
            t.store(to, i, v);
            Ok(())
        })?;
        self.counted_loop(vend, n, 1, &mut |t, i| {
            let v = t.load(from, i, Width::Scalar);
            t.store(to, i, v);
            Ok(())
        })
    }

    /// `y[t] += x[t]·z[t]` for t < n: vector body, scalar tail (no fused multiply-add, as in
    /// the interpreter).
    fn add_product(&mut self, y: Value, x: Value, z: Value, n: Value) -> Result<(), CodegenError> {
        let zero = self.iconst(0);
        let vend = self.vector_end(n);
        self.counted_loop(zero, vend, self.lanes(), &mut |t, i| {
            let yv = t.load(y, i, Width::Vector);
            let xv = t.load(x, i, Width::Vector);
            let zv = t.load(z, i, Width::Vector);
            let p = t.builder.ins().fmul(xv, zv);
            let r = t.builder.ins().fadd(yv, p);
            t.store(y, i, r);
            Ok(())
        })?;
        self.counted_loop(vend, n, 1, &mut |t, i| {
            let yv = t.load(y, i, Width::Scalar);
            let xv = t.load(x, i, Width::Scalar);
            let zv = t.load(z, i, Width::Scalar);
            let p = t.builder.ins().fmul(xv, zv);
            let r = t.builder.ins().fadd(yv, p);
            t.store(y, i, r);
            Ok(())
        })
    }

    /// `z[t] = x[t]·y[t]` for t < n: vector body, scalar tail.
    fn hadamard(&mut self, z: Value, x: Value, y: Value, n: Value) -> Result<(), CodegenError> {
        let zero = self.iconst(0);
        let vend = self.vector_end(n);
        self.counted_loop(zero, vend, self.lanes(), &mut |t, i| {
            let xv = t.load(x, i, Width::Vector);
            let yv = t.load(y, i, Width::Vector);
            let p = t.builder.ins().fmul(xv, yv);
            t.store(z, i, p);
            Ok(())
        })?;
        self.counted_loop(vend, n, 1, &mut |t, i| {
            let xv = t.load(x, i, Width::Scalar);
            let yv = t.load(y, i, Width::Scalar);
            let p = t.builder.ins().fmul(xv, yv);
            t.store(z, i, p);
            Ok(())
        })
    }

    /// `dst[0..n] = value`.
    fn fill(&mut self, base: Value, n: Value, value: f64) -> Result<(), CodegenError> {
        let zero = self.iconst(0);
        self.counted_loop(zero, n, 1, &mut |t, i| {
            let v = t.fconst(value);
            t.store(base, i, v);
            Ok(())
        })
    }

    /// `dst = alpha·S·b` (or `Sᵀ·b`): each observed entry adds a scaled row of `b` to a row
    /// of `dst`, in entry order (the interpreter's order).
    #[allow(clippy::too_many_arguments)]
    fn translate_spmm(
        &mut self,
        dst: BufId,
        pattern: BufId,
        values: BufId,
        b: BufId,
        trans: bool,
        alpha: f64,
        accumulate: bool,
    ) -> Result<(), CodegenError> {
        if !accumulate {
            let n = self.count(dst);
            let base = self.data[&dst];
            self.fill(base, n, 0.0)?;
        }
        let nnz = self.axis(values, 0)?;
        let width = self.axis(b, 1)?;
        let vals = self.data[&values];
        let zero = self.iconst(0);
        self.counted_loop(zero, nnz, 1, &mut |t, k| {
            let (i, j) = t.entry_index(pattern, k);
            let (to, from) = if trans { (j, i) } else { (i, j) };
            let v = t.load(vals, k, Width::Scalar);
            let a = t.fconst(alpha);
            let scale = t.builder.ins().fmul(a, v);
            let rd = t.row_base(dst, to);
            let rb = t.row_base(b, from);
            t.axpy(rd, rb, scale, width)
        })
    }

    /// `y[t] += s·x[t]` for t < n: vector body, scalar tail.
    fn axpy(&mut self, y: Value, x: Value, s: Value, n: Value) -> Result<(), CodegenError> {
        let sv = self.splat(s);
        let zero = self.iconst(0);
        let vend = self.vector_end(n);
        self.counted_loop(zero, vend, self.lanes(), &mut |t, i| {
            let yv = t.load(y, i, Width::Vector);
            let xv = t.load(x, i, Width::Vector);
            let p = t.builder.ins().fmul(sv, xv);
            let r = t.builder.ins().fadd(yv, p);
            t.store(y, i, r);
            Ok(())
        })?;
        self.counted_loop(vend, n, 1, &mut |t, i| {
            let yv = t.load(y, i, Width::Scalar);
            let xv = t.load(x, i, Width::Scalar);
            let p = t.builder.ins().fmul(s, xv);
            let r = t.builder.ins().fadd(yv, p);
            t.store(y, i, r);
            Ok(())
        })
    }

    /// The values of the scalar buffers an expression reads, loaded once before its loop
    /// (a scalar written by an earlier statement of the kernel is read after it).
    fn load_scalars(&mut self, expr: &Expr) -> HashMap<BufId, Value> {
        let mut ids = Vec::new();
        expr.buffers(&mut ids);
        let mut out = HashMap::new();
        for id in ids {
            if self.program.buffer(id).shape.is_empty() && !out.contains_key(&id) {
                let zero = self.iconst(0);
                let base = self.data[&id];
                let v = self.load(base, zero, Width::Scalar);
                out.insert(id, v);
            }
        }
        out
    }

    /// Evaluates an expression at element `index` (of every non-scalar buffer).
    fn translate_expr(
        &mut self,
        expr: &Expr,
        index: Value,
        width: Width,
        scalars: &HashMap<BufId, Value>,
    ) -> Result<Value, CodegenError> {
        Ok(match expr {
            Expr::Buf(id) => match scalars.get(id) {
                Some(v) if width == Width::Vector => self.splat(*v),
                Some(v) => *v,
                None => {
                    let base = self.data[id];
                    self.load(base, index, width)
                }
            },
            Expr::Const(c) => {
                let v = self.fconst(*c);
                match width {
                    Width::Vector => self.splat(v),
                    Width::Scalar => v,
                }
            }
            Expr::Unary(op, a) => {
                let x = self.translate_expr(a, index, width, scalars)?;
                self.translate_unary(*op, x, width)?
            }
            Expr::Binary(op, a, b) => {
                let x = self.translate_expr(a, index, width, scalars)?;
                let y = self.translate_expr(b, index, width, scalars)?;
                self.translate_binary(*op, x, y, width)
            }
        })
    }

    fn translate_unary(
        &mut self,
        op: Unary,
        x: Value,
        width: Width,
    ) -> Result<Value, CodegenError> {
        if op == Unary::Step {
            // x > 0 ? 1 : 0 (an unordered compare is false, so NaN gives 0).
            let (mut zero, mut one) = (self.fconst(0.0), self.fconst(1.0));
            if width == Width::Vector {
                (zero, one) = (self.splat(zero), self.splat(one));
            }
            let positive = self.builder.ins().fcmp(FloatCC::GreaterThan, x, zero);
            return Ok(match width {
                Width::Scalar => self.builder.ins().select(positive, one, zero),
                Width::Vector => {
                    let ty = self.vector();
                    let mask = self
                        .builder
                        .ins()
                        .bitcast(ty, MemFlagsData::new(), positive);
                    self.builder.ins().bitselect(mask, one, zero)
                }
            });
        }
        let ins = self.builder.ins();
        Ok(match op {
            Unary::Step => unreachable!("handled above"),
            Unary::Neg => ins.fneg(x),
            Unary::Abs => ins.fabs(x),
            Unary::Square => ins.fmul(x, x),
            Unary::Sqrt => ins.sqrt(x),
            Unary::Exp | Unary::Log1p | Unary::Sigmoid | Unary::Softplus | Unary::XLogX => {
                // Transcendentals call the f64 definition (scalar loops only).
                let name = unary_helper(op).unwrap_or("hfc_exp");
                let f = self.helper(name)?;
                let arg = match self.precision {
                    Precision::F64 => x,
                    Precision::F32 => self.builder.ins().fpromote(types::F64, x),
                };
                let call = self.builder.ins().call(f, &[arg]);
                let r = self.builder.inst_results(call)[0];
                match self.precision {
                    Precision::F64 => r,
                    Precision::F32 => self.builder.ins().fdemote(types::F32, r),
                }
            }
        })
    }

    /// `x > y ? x : y` (or `<` for min): cheaper than IEEE `fmax`, and equal to Rust's
    /// `f64::max` on numbers.
    fn select_by(&mut self, cc: FloatCC, x: Value, y: Value, width: Width) -> Value {
        let mask = self.builder.ins().fcmp(cc, x, y);
        match width {
            Width::Scalar => self.builder.ins().select(mask, x, y),
            Width::Vector => {
                let ty = self.vector();
                let mask = self.builder.ins().bitcast(ty, MemFlagsData::new(), mask);
                self.builder.ins().bitselect(mask, x, y)
            }
        }
    }

    fn translate_binary(&mut self, op: Binary, x: Value, y: Value, width: Width) -> Value {
        match op {
            Binary::Add => self.builder.ins().fadd(x, y),
            Binary::Sub => self.builder.ins().fsub(x, y),
            Binary::Mul => self.builder.ins().fmul(x, y),
            Binary::Div => self.builder.ins().fdiv(x, y),
            Binary::Min => self.select_by(FloatCC::LessThan, x, y, width),
            Binary::Max => self.select_by(FloatCC::GreaterThan, x, y, width),
        }
    }

    /// `dst = expr` elementwise: a vector body (unless the expression calls a helper) and a
    /// scalar tail.
    fn translate_map(&mut self, dst: BufId, expr: &Expr) -> Result<(), CodegenError> {
        let n = self.count(dst);
        let scalars = self.load_scalars(expr);
        let out = self.data[&dst];
        let zero = self.iconst(0);
        // Helpers are scalar functions: an expression that calls one runs the scalar loop.
        let vend = if uses_helper(expr) {
            zero
        } else {
            let vend = self.vector_end(n);
            self.counted_loop(zero, vend, self.lanes(), &mut |t, i| {
                let v = t.translate_expr(expr, i, Width::Vector, &scalars)?;
                t.store(out, i, v);
                Ok(())
            })?;
            vend
        };
        self.counted_loop(vend, n, 1, &mut |t, i| {
            let v = t.translate_expr(expr, i, Width::Scalar, &scalars)?;
            t.store(out, i, v);
            Ok(())
        })
    }

    /// `dst = Σ expr` over the shape of the expression's first non-scalar buffer (a
    /// scalar-only expression is its own sum, as in the interpreter).
    fn translate_sum(&mut self, dst: BufId, expr: &Expr) -> Result<(), CodegenError> {
        let mut ids = Vec::new();
        expr.buffers(&mut ids);
        let space = ids
            .iter()
            .copied()
            .find(|id| !self.program.buffer(*id).shape.is_empty());
        let scalars = self.load_scalars(expr);
        let out = self.data[&dst];
        let zero = self.iconst(0);
        let Some(space) = space else {
            let v = self.translate_expr(expr, zero, Width::Scalar, &scalars)?;
            self.store(out, zero, v);
            return Ok(());
        };
        let n = self.count(space);
        let (vend, head) = if uses_helper(expr) {
            // Scalar code, in the vector loop's order: one accumulator per lane.
            let vend = self.vector_end(n);
            let fzero = self.fconst(0.0);
            let lanes: Vec<_> = (0..self.lanes())
                .map(|_| {
                    let acc = self.builder.declare_var(self.elem());
                    self.builder.def_var(acc, fzero);
                    acc
                })
                .collect();
            self.counted_loop(zero, vend, self.lanes(), &mut |t, i| {
                for (lane, acc) in lanes.iter().enumerate() {
                    let index = t.builder.ins().iadd_imm_s(i, lane as i64);
                    let v = t.translate_expr(expr, index, Width::Scalar, &scalars)?;
                    let s = t.builder.use_var(*acc);
                    let s = t.builder.ins().fadd(s, v);
                    t.builder.def_var(*acc, s);
                }
                Ok(())
            })?;
            let mut head = self.builder.use_var(lanes[0]);
            for acc in &lanes[1..] {
                let v = self.builder.use_var(*acc);
                head = self.builder.ins().fadd(head, v);
            }
            (vend, head)
        } else {
            let vend = self.vector_end(n);
            let fzero = self.fconst(0.0);
            let zeros = self.splat(fzero);
            let acc = self.builder.declare_var(self.vector());
            self.builder.def_var(acc, zeros);
            self.counted_loop(zero, vend, self.lanes(), &mut |t, i| {
                let v = t.translate_expr(expr, i, Width::Vector, &scalars)?;
                let s = t.builder.use_var(acc);
                let s = t.builder.ins().fadd(s, v);
                t.builder.def_var(acc, s);
                Ok(())
            })?;
            let v = self.builder.use_var(acc);
            (vend, self.reduce_lanes(v))
        };
        let total = self.builder.declare_var(self.elem());
        self.builder.def_var(total, head);
        self.counted_loop(vend, n, 1, &mut |t, i| {
            let v = t.translate_expr(expr, i, Width::Scalar, &scalars)?;
            let s = t.builder.use_var(total);
            let s = t.builder.ins().fadd(s, v);
            t.builder.def_var(total, s);
            Ok(())
        })?;
        let total = self.builder.use_var(total);
        self.store(out, zero, total);
        Ok(())
    }

    /// A fold over the n entries of a strided column, in row order.
    fn fold_column(
        &mut self,
        column: Value,
        stride: Value,
        (start, n): (i64, Value),
        init: Value,
        step: &mut dyn FnMut(&mut Self, Value, Value, Value) -> Value,
    ) -> Result<Value, CodegenError> {
        let acc = self.builder.declare_var(self.elem());
        self.builder.def_var(acc, init);
        let start = self.iconst(start);
        self.counted_loop(start, n, 1, &mut |t, row| {
            let index = t.builder.ins().imul(row, stride);
            let x = t.load(column, index, Width::Scalar);
            let a = t.builder.use_var(acc);
            let next = step(t, a, x, row);
            t.builder.def_var(acc, next);
            Ok(())
        })?;
        Ok(self.builder.use_var(acc))
    }

    /// One atom's value on a strided column (the sequential definitions of `gauge.rs`).
    fn atom_value(
        &mut self,
        atom: GaugeAtom,
        column: Value,
        stride: Value,
        n: Value,
    ) -> Result<Value, CodegenError> {
        let zero = self.fconst(0.0);
        match atom {
            GaugeAtom::L1 => self.fold_column(column, stride, (0, n), zero, &mut |t, a, x, _| {
                let ax = t.builder.ins().fabs(x);
                t.builder.ins().fadd(a, ax)
            }),
            GaugeAtom::L2 => {
                let ss = self.fold_column(column, stride, (0, n), zero, &mut |t, a, x, _| {
                    let sq = t.builder.ins().fmul(x, x);
                    t.builder.ins().fadd(a, sq)
                })?;
                Ok(self.builder.ins().sqrt(ss))
            }
            GaugeAtom::Linf => self.fold_column(column, stride, (0, n), zero, &mut |t, a, x, _| {
                let ax = t.builder.ins().fabs(x);
                t.select_by(FloatCC::GreaterThan, ax, a, Width::Scalar)
            }),
            GaugeAtom::Tv => self.fold_column(column, stride, (1, n), zero, &mut |t, a, x, row| {
                let prev_row = t.builder.ins().iadd_imm_s(row, -1);
                let prev_index = t.builder.ins().imul(prev_row, stride);
                let prev = t.load(column, prev_index, Width::Scalar);
                let d = t.builder.ins().fsub(x, prev);
                let d = t.builder.ins().fabs(d);
                t.builder.ins().fadd(a, d)
            }),
        }
    }

    /// `dst[i] = Σ w·atom(src[:, i])`.
    fn translate_column_gauge(
        &mut self,
        dst: BufId,
        src: BufId,
        terms: &[(f64, GaugeAtom)],
    ) -> Result<(), CodegenError> {
        let n = self.axis(src, 0)?;
        let k = self.axis(src, 1)?;
        let stride = self.row_stride[&src];
        let (data, out) = (self.data[&src], self.data[&dst]);
        let zero = self.iconst(0);
        self.counted_loop(zero, k, 1, &mut |t, i| {
            let column = t.addr(data, i);
            let mut total = t.fconst(0.0);
            for (w, atom) in terms {
                let v = t.atom_value(*atom, column, stride, n)?;
                let w = t.fconst(*w);
                let wv = t.builder.ins().fmul(w, v);
                total = t.builder.ins().fadd(total, wv);
            }
            t.store(out, i, total);
            Ok(())
        })
    }

    /// `x[t] = f(x[t])` over a strided column.
    fn map_column(
        &mut self,
        column: Value,
        stride: Value,
        n: Value,
        f: &mut dyn FnMut(&mut Self, Value) -> Value,
    ) -> Result<(), CodegenError> {
        let zero = self.iconst(0);
        self.counted_loop(zero, n, 1, &mut |t, row| {
            let index = t.builder.ins().imul(row, stride);
            let x = t.load(column, index, Width::Scalar);
            let y = f(t, x);
            t.store(column, index, y);
            Ok(())
        })
    }

    /// `dst[:, i] = prox_{weights[i]·gauge}(src[:, i])`, the composition of `gauge::prox`:
    /// the cone, then TV, ℓ1, ℓ∞, ℓ2 (TV and ℓ∞ are sequential algorithms called as helpers;
    /// the cone, soft-thresholding and the ℓ2 shrink are generated).
    fn translate_column_prox(
        &mut self,
        dst: BufId,
        src: BufId,
        weights: BufId,
        gauge: &crate::kir::Gauge,
    ) -> Result<(), CodegenError> {
        let n = self.axis(src, 0)?;
        let k = self.axis(src, 1)?;
        let (src_stride, dst_stride) = (self.row_stride[&src], self.row_stride[&dst]);
        let (src_data, dst_data, w_data) = (self.data[&src], self.data[&dst], self.data[&weights]);
        let suffix = self.precision.name();
        let zero = self.iconst(0);
        self.counted_loop(zero, k, 1, &mut |t, i| {
            let column = t.addr(dst_data, i);
            if src != dst {
                let from = t.addr(src_data, i);
                let zero = t.iconst(0);
                t.counted_loop(zero, n, 1, &mut |t, row| {
                    let si = t.builder.ins().imul(row, src_stride);
                    let di = t.builder.ins().imul(row, dst_stride);
                    let x = t.load(from, si, Width::Scalar);
                    t.store(column, di, x);
                    Ok(())
                })?;
            }
            if gauge.nonneg {
                t.map_column(column, dst_stride, n, &mut |t, x| {
                    let z = t.fconst(0.0);
                    t.select_by(FloatCC::GreaterThan, x, z, Width::Scalar)
                })?;
            }
            let c = t.load(w_data, i, Width::Scalar);
            let fzero = t.fconst(0.0);
            let positive = t.builder.ins().fcmp(FloatCC::LessThanOrEqual, c, fzero);
            let body = t.builder.create_block();
            let done = t.builder.create_block();
            t.builder.ins().brif(positive, done, &[], body, &[]);
            t.builder.switch_to_block(body);
            for order in [GaugeAtom::Tv, GaugeAtom::L1, GaugeAtom::Linf, GaugeAtom::L2] {
                for (w, atom) in &gauge.terms {
                    if *atom != order {
                        continue;
                    }
                    let wc = t.fconst(*w);
                    let weight = t.builder.ins().fmul(c, wc);
                    match atom {
                        GaugeAtom::Tv | GaugeAtom::Linf => {
                            let name = if *atom == GaugeAtom::Tv {
                                format!("hfc_prox_tv_{suffix}")
                            } else {
                                format!("hfc_prox_linf_{suffix}")
                            };
                            let f = t.helper(&name)?;
                            let weight = match t.precision {
                                Precision::F64 => weight,
                                Precision::F32 => t.builder.ins().fpromote(types::F64, weight),
                            };
                            t.builder.ins().call(f, &[column, n, dst_stride, weight]);
                        }
                        GaugeAtom::L1 => {
                            // sign(x)·max(|x| − c, 0)
                            t.map_column(column, dst_stride, n, &mut |t, x| {
                                let ax = t.builder.ins().fabs(x);
                                let d = t.builder.ins().fsub(ax, weight);
                                let z = t.fconst(0.0);
                                let m = t.select_by(FloatCC::GreaterThan, d, z, Width::Scalar);
                                t.builder.ins().fcopysign(m, x)
                            })?;
                        }
                        GaugeAtom::L2 => {
                            let z = t.fconst(0.0);
                            let ss =
                                t.fold_column(column, dst_stride, (0, n), z, &mut |t, a, x, _| {
                                    let sq = t.builder.ins().fmul(x, x);
                                    t.builder.ins().fadd(a, sq)
                                })?;
                            let norm = t.builder.ins().sqrt(ss);
                            let one = t.fconst(1.0);
                            let ratio = t.builder.ins().fdiv(weight, norm);
                            let keep = t.builder.ins().fsub(one, ratio);
                            let z = t.fconst(0.0);
                            let big = t.builder.ins().fcmp(FloatCC::GreaterThan, norm, weight);
                            let factor = t.builder.ins().select(big, keep, z);
                            t.map_column(column, dst_stride, n, &mut |t, x| {
                                t.builder.ins().fmul(x, factor)
                            })?;
                        }
                    }
                }
            }
            t.builder.ins().jump(done, &[]);
            t.builder.switch_to_block(done);
            Ok(())
        })
    }
}

/// The kernel ABI's signature.
pub(crate) fn kernel_signature(call_conv: CallConv) -> Signature {
    let mut sig = Signature::new(call_conv);
    sig.params.push(AbiParam::new(types::I64));
    sig.returns.push(AbiParam::new(types::I32));
    sig
}
