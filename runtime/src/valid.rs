//! The kernel IR validator: every back end may assume what it checks.
//!
//! Input: a [`Program`]. Output: `Ok(())` or the first fault found. A fault is a compiler bug
//! (the lowering produced a bad program), never a user error: the CLI reports it as an
//! internal error.

use crate::kir::{BufId, BufferKind, DimId, DimKind, Expr, Program, Slot, Stmt};

/// What is wrong with a program.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid kernel program `{program}`: {location}{message}")]
pub struct ValidationError {
    /// The program's name.
    pub program: String,
    /// `kernel NAME, statement K: ` or empty.
    pub location: String,
    /// The fault.
    pub message: String,
}

/// Validates a program.
pub fn validate(program: &Program) -> Result<(), ValidationError> {
    let fail = |location: String, message: String| ValidationError {
        program: program.name.clone(),
        location,
        message,
    };
    let nbuf = program.buffers.len();
    for (k, dim) in program.dims.iter().enumerate() {
        // A multiple of an earlier, unscaled dimension: binding stays one step deep.
        if let DimKind::Scaled { base, factor } = dim.kind
            && (base.0 as usize >= k
                || factor == 0
                || matches!(program.dim(base).kind, DimKind::Scaled { .. }))
        {
            return Err(fail(
                String::new(),
                format!("dimension {} is a malformed multiple", dim.name),
            ));
        }
    }
    for buffer in &program.buffers {
        if let Some(d) = buffer
            .shape
            .iter()
            .find(|d| d.0 as usize >= program.dims.len())
        {
            return Err(fail(
                String::new(),
                format!("buffer %{} has unknown dimension {}", buffer.name, d.0),
            ));
        }
        if let BufferKind::Observed { rows, cols } = buffer.kind
            && (rows.0 as usize >= program.dims.len()
                || cols.0 as usize >= program.dims.len()
                || buffer.shape.len() != 1)
        {
            return Err(fail(
                String::new(),
                format!("observed buffer %{} is malformed", buffer.name),
            ));
        }
    }
    for role in program.plan.required_roles() {
        match program.plan.kernel(role) {
            Some(k) if (k.0 as usize) < program.kernels.len() => {}
            _ => {
                return Err(fail(
                    String::new(),
                    format!("no kernel for role {}", role.name()),
                ));
            }
        }
    }
    for (slot, id) in &program.plan.slots {
        if id.0 as usize >= nbuf {
            return Err(fail(
                String::new(),
                format!("slot {slot:?} names an unknown buffer"),
            ));
        }
    }
    let factor_slots = (0..program.plan.blocks() as u8).map(Slot::Factor);
    for slot in factor_slots.chain([Slot::Loss]) {
        if program.plan.slot(slot).is_none() {
            return Err(fail(String::new(), format!("slot {slot:?} is not bound")));
        }
    }
    // State buffers must be written by some kernel.
    let mut written_anywhere = vec![false; nbuf];
    for kernel in &program.kernels {
        for stmt in &kernel.body {
            if let Some(w) = written_anywhere.get_mut(stmt.dst().0 as usize) {
                *w = true;
            }
        }
    }
    for kernel in &program.kernels {
        let mut written = vec![false; nbuf];
        for (k, stmt) in kernel.body.iter().enumerate() {
            let here = || format!("kernel {}, statement {}: ", kernel.name, k + 1);
            let mut ids = stmt.reads();
            ids.push(stmt.dst());
            if let Some(bad) = ids.iter().find(|id| id.0 as usize >= nbuf) {
                return Err(fail(here(), format!("unknown buffer {}", bad.0)));
            }
            for id in stmt.reads() {
                let buffer = program.buffer(id);
                let ok = match buffer.kind {
                    BufferKind::Temp => written[id.0 as usize],
                    BufferKind::State => written_anywhere[id.0 as usize],
                    _ => true,
                };
                if !ok {
                    return Err(fail(
                        here(),
                        format!("%{} is read before it is written", buffer.name),
                    ));
                }
            }
            let dst = program.buffer(stmt.dst());
            if matches!(
                dst.kind,
                BufferKind::Input | BufferKind::Observed { .. } | BufferKind::Arg
            ) {
                return Err(fail(here(), format!("%{} is read-only", dst.name)));
            }
            check_stmt(program, stmt).map_err(|m| fail(here(), m))?;
            written[stmt.dst().0 as usize] = true;
        }
    }
    Ok(())
}

fn shape(program: &Program, id: BufId) -> &[DimId] {
    &program.buffer(id).shape
}

/// A buffer's entry count as a symbolic product: its unscaled dimensions, sorted, and the
/// product of the multiples ([d·h, r] and [d, h·r] are both ({d, r}, h)).
fn entry_count(program: &Program, id: BufId) -> (Vec<DimId>, u64) {
    let mut bases = Vec::new();
    let mut multiple = 1u64;
    for &d in shape(program, id) {
        match program.dim(d).kind {
            DimKind::Scaled { base, factor } => {
                bases.push(base);
                multiple *= u64::from(factor);
            }
            _ => bases.push(d),
        }
    }
    bases.sort();
    (bases, multiple)
}

fn show(program: &Program, dims: &[DimId]) -> String {
    let names: Vec<&str> = dims.iter().map(|d| program.dim(*d).name.as_str()).collect();
    format!("[{}]", names.join(", "))
}

fn matrix(program: &Program, id: BufId) -> Result<(DimId, DimId), String> {
    match shape(program, id) {
        [a, b] => Ok((*a, *b)),
        other => Err(format!(
            "%{} must be a matrix, has shape {}",
            program.buffer(id).name,
            show(program, other)
        )),
    }
}

fn pattern(program: &Program, id: BufId) -> Result<(DimId, DimId, DimId), String> {
    match program.buffer(id).kind {
        BufferKind::Observed { rows, cols } => Ok((rows, cols, shape(program, id)[0])),
        _ => Err(format!(
            "%{} is not an observed input",
            program.buffer(id).name
        )),
    }
}

fn expect(program: &Program, id: BufId, want: &[DimId]) -> Result<(), String> {
    if shape(program, id) == want {
        Ok(())
    } else {
        Err(format!(
            "%{} has shape {}, expected {}",
            program.buffer(id).name,
            show(program, shape(program, id)),
            show(program, want)
        ))
    }
}

fn check_expr_shapes(program: &Program, expr: &Expr, space: &[DimId]) -> Result<(), String> {
    let mut ids = Vec::new();
    expr.buffers(&mut ids);
    for id in ids {
        let s = shape(program, id);
        if !s.is_empty() && s != space {
            return Err(format!(
                "%{} has shape {} in an expression over {}",
                program.buffer(id).name,
                show(program, s),
                show(program, space)
            ));
        }
        if matches!(program.buffer(id).kind, BufferKind::Observed { .. }) && s != space {
            return Err("observed values used outside their pattern's space".into());
        }
    }
    Ok(())
}

fn check_stmt(program: &Program, stmt: &Stmt) -> Result<(), String> {
    match stmt {
        Stmt::Gemm {
            dst,
            a,
            trans_a,
            b,
            trans_b,
            ..
        } => {
            let (ar, ac) = matrix(program, *a)?;
            let (br, bc) = matrix(program, *b)?;
            let (p, q) = if *trans_a { (ac, ar) } else { (ar, ac) };
            let (q2, s) = if *trans_b { (bc, br) } else { (br, bc) };
            if q != q2 {
                return Err(format!(
                    "gemm inner dimensions differ: {} and {}",
                    program.dim(q).name,
                    program.dim(q2).name
                ));
            }
            expect(program, *dst, &[p, s])
        }
        Stmt::Sample {
            dst,
            pattern: p,
            a,
            b,
        } => {
            let (rows, cols, nnz) = pattern(program, *p)?;
            expect(program, *dst, &[nnz])?;
            let (ar, ak) = matrix(program, *a)?;
            let (br, bk) = matrix(program, *b)?;
            if ar != rows || br != cols || ak != bk {
                return Err("sample operands do not fit the pattern".into());
            }
            Ok(())
        }
        Stmt::KhatriRao { dst, a, b } => {
            let (_, ak) = matrix(program, *a)?;
            let (_, bk) = matrix(program, *b)?;
            let (_, dk) = matrix(program, *dst)?;
            if ak != bk || dk != ak {
                return Err("khatri_rao operands and destination differ in columns".into());
            }
            if dst == a || dst == b {
                return Err("khatri_rao into one of its operands".into());
            }
            Ok(())
        }
        Stmt::KhatriRaoAdjoint {
            dst, src, other, ..
        } => {
            let (_, sk) = matrix(program, *src)?;
            let (_, ok) = matrix(program, *other)?;
            let (_, dk) = matrix(program, *dst)?;
            if sk != ok || dk != sk {
                return Err("khatri_rao_adjoint operands and destination differ in columns".into());
            }
            if dst == src || dst == other {
                return Err("khatri_rao_adjoint into one of its operands".into());
            }
            Ok(())
        }
        Stmt::Copy { dst, src } => {
            if dst == src {
                return Err("copy onto itself".into());
            }
            if entry_count(program, *dst) != entry_count(program, *src) {
                return Err(format!(
                    "copy between shapes of different sizes: {} and {}",
                    show(program, shape(program, *dst)),
                    show(program, shape(program, *src))
                ));
            }
            Ok(())
        }
        Stmt::SpMM {
            dst,
            pattern: p,
            values,
            b,
            trans,
            ..
        } => {
            let (rows, cols, nnz) = pattern(program, *p)?;
            expect(program, *values, &[nnz])?;
            let (br, bk) = matrix(program, *b)?;
            let (inner, outer) = if *trans { (rows, cols) } else { (cols, rows) };
            if br != inner {
                return Err("spmm operand does not fit the pattern".into());
            }
            expect(program, *dst, &[outer, bk])
        }
        Stmt::Map { dst, expr } => check_expr_shapes(program, expr, shape(program, *dst)),
        Stmt::Sum { dst, expr } => {
            expect(program, *dst, &[])?;
            let mut ids = Vec::new();
            expr.buffers(&mut ids);
            let space = ids
                .iter()
                .map(|id| shape(program, *id))
                .find(|s| !s.is_empty())
                .unwrap_or(&[])
                .to_vec();
            check_expr_shapes(program, expr, &space)
        }
        Stmt::ColumnGauge { dst, src, gauge } => {
            if gauge.terms.is_empty() {
                return Err("a gauge needs at least one term".into());
            }
            let (_, k) = matrix(program, *src)?;
            expect(program, *dst, &[k])
        }
        Stmt::ColumnProx {
            dst,
            src,
            weights,
            gauge,
        } => {
            if gauge.terms.is_empty() {
                return Err("a gauge needs at least one term".into());
            }
            let (rows, k) = matrix(program, *src)?;
            expect(program, *dst, &[rows, k])?;
            expect(program, *weights, &[k])
        }
    }
}
