//! Kernel-by-kernel differential tests of the GPU back end against the interpreter, on
//! whatever adapter is there (lavapipe in CI), and naga validation of every shader kind.
//!
//! Without an adapter the device tests skip with a message, unless `HFC_REQUIRE_GPU=1`
//! makes that a failure. One device is shared by every test of the binary.

#![allow(clippy::print_stderr)]

use std::sync::Arc;

use ndarray::{Array1, Array2};

use super::{GpuBackend, GpuContext, Precision, emit_wgsl, validate_wgsl, wgsl};
use crate::backend::Backend;
use crate::interp::Interpreter;
use crate::kir::*;
use crate::value::{Observed, Value};

/// The shared device, when it can run `precision` (else the test is skipped, or fails
/// under `HFC_REQUIRE_GPU`).
fn device(precision: Precision) -> Option<Arc<GpuContext>> {
    GpuContext::shared_for_tests(precision)
        .map_err(|why| eprintln!("skipped: {why}"))
        .ok()
}

/// A program of one kernel over the dims `m, n, k, nnz`, for tests.
struct Builder {
    program: Program,
}

const M: DimId = DimId(0);
const N: DimId = DimId(1);
const K: DimId = DimId(2);
const NNZ: DimId = DimId(3);

impl Builder {
    fn new() -> Builder {
        let dim = |name: &str, kind| Dim {
            name: name.into(),
            kind,
        };
        Builder {
            program: Program {
                name: "test".into(),
                dims: vec![
                    dim("m", DimKind::Data),
                    dim("n", DimKind::Data),
                    dim("k", DimKind::Rank),
                    dim("nnz", DimKind::Observed),
                ],
                buffers: Vec::new(),
                kernels: Vec::new(),
                plan: Plan::for_kernel_tests(K),
            },
        }
    }

    fn buf(&mut self, name: &str, shape: &[DimId], kind: BufferKind) -> BufId {
        self.program.buffers.push(Buffer {
            name: name.into(),
            shape: shape.to_vec(),
            kind,
        });
        BufId(self.program.buffers.len() as u32 - 1)
    }

    fn kernel(mut self, body: Vec<Stmt>) -> Program {
        self.program.kernels.push(Kernel {
            name: "k".into(),
            body,
        });
        self.program
    }
}

/// Deterministic values in [−1, 1).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64 / (1u64 << 53) as f64) * 2.0 - 1.0
    }
    fn matrix(&mut self, r: usize, c: usize) -> Value {
        Value::Matrix(Array2::from_shape_fn((r, c), |_| self.next()))
    }
    fn observed(&mut self, rows: usize, cols: usize, fraction: f64) -> Observed {
        let mut entries = Vec::new();
        for i in 0..rows {
            for j in 0..cols {
                if (self.next() + 1.0) / 2.0 < fraction {
                    entries.push((i as u32, j as u32, self.next()));
                }
            }
        }
        Observed::from_triplets(rows, cols, entries)
    }
}

fn flat(v: &Value) -> Vec<f64> {
    match v {
        Value::Scalar(s) => vec![*s],
        Value::Vector(x) => x.to_vec(),
        Value::Matrix(x) => x.iter().copied().collect(),
        Value::Observed(o) => o.values.to_vec(),
    }
}

/// Runs kernel 0 on the interpreter and on the GPU backend `gpu` with the same extents and
/// inputs, and compares every buffer a statement writes: the largest difference relative to
/// the largest magnitude of the result must be below `tol`.
fn compare(
    program: &Program,
    gpu: &mut GpuBackend,
    extents: &[usize],
    inputs: &[(BufId, Value)],
    tol: f64,
    what: &str,
) {
    let mut cpu = Interpreter::new(program);
    for (d, e) in extents.iter().enumerate() {
        cpu.bind_dim(DimId(d as u32), *e);
        gpu.bind_dim(DimId(d as u32), *e);
    }
    for (id, value) in inputs {
        cpu.set(*id, value.clone()).expect("cpu set");
        gpu.set(*id, value.clone()).expect("gpu set");
    }
    cpu.run(KernelId(0)).expect("cpu run");
    gpu.run(KernelId(0)).expect("gpu run");
    for stmt in &program.kernels[0].body {
        let id = stmt.dst();
        let (want, got) = (cpu.get(id).expect("cpu get"), gpu.get(id).expect("gpu get"));
        assert_eq!(
            want.shape(),
            got.shape(),
            "{what}: shape of %{}",
            program.buffer(id).name
        );
        let (w, g) = (flat(&want), flat(&got));
        let scale = w.iter().fold(1e-30f64, |m, x| m.max(x.abs()));
        let err = w
            .iter()
            .zip(&g)
            .fold(0.0f64, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            err <= tol * scale.max(1e-3) && g.iter().all(|x| x.is_finite()),
            "{what} extents {extents:?}: %{} differs by {err:e} (scale {scale:e}, tol {tol:e})\n cpu {w:?}\n gpu {g:?}",
            program.buffer(id).name
        );
    }
}

/// f32 round-off per accumulated term, with room for the summation order.
fn tol(precision: Precision, depth: usize) -> f64 {
    let eps = match precision {
        Precision::F32 => f32::EPSILON as f64,
        Precision::F64 => f64::EPSILON,
    };
    8.0 * eps * (depth as f64 + 2.0)
}

const PRECISIONS: [Precision; 2] = [Precision::F32, Precision::F64];

fn gemm_program() -> (Program, [BufId; 4]) {
    let mut b = Builder::new();
    let a = b.buf("A", &[M, K], BufferKind::Input);
    let at = b.buf("At", &[K, M], BufferKind::Input);
    let bb = b.buf("B", &[K, N], BufferKind::Input);
    let bt = b.buf("Bt", &[N, K], BufferKind::Input);
    let c1 = b.buf("C1", &[M, N], BufferKind::State);
    let c2 = b.buf("C2", &[M, N], BufferKind::State);
    let c3 = b.buf("C3", &[M, N], BufferKind::State);
    let g = |dst, a, trans_a, b, trans_b, alpha, accumulate| Stmt::Gemm {
        dst,
        a,
        trans_a,
        b,
        trans_b,
        alpha,
        accumulate,
    };
    let program = b.kernel(vec![
        g(c1, a, false, bb, false, 1.5, false),
        g(c2, at, true, bb, false, 1.0, false),
        g(c2, a, false, bt, true, -0.5, true),
        g(c3, at, true, bt, true, 1.0, false),
    ]);
    (program, [a, at, bb, bt])
}

#[test]
fn gemm_matches_the_interpreter() {
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        let (program, [a, at, b, bt]) = gemm_program();
        let mut gpu = GpuBackend::new(&program, ctx, precision).expect("compiles");
        let mut rng = Lcg(1);
        for (m, n, k) in [
            (1, 1, 1),
            (17, 5, 3),
            (33, 40, 0),
            (0, 3, 4),
            (70, 1, 65),
            (5, 300, 17),
            (130, 20, 257),
        ] {
            let inputs = [
                (a, rng.matrix(m, k)),
                (at, rng.matrix(k, m)),
                (b, rng.matrix(k, n)),
                (bt, rng.matrix(n, k)),
            ];
            compare(
                &program,
                &mut gpu,
                &[m, n, k, 0],
                &inputs,
                tol(precision, k),
                &format!("gemm {precision:?}"),
            );
        }
    }
}

#[test]
fn khatri_rao_matches_the_interpreter() {
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        // The fourth dimension (bound to m·n here) is the product's rows.
        let mut b = Builder::new();
        let u = b.buf("U", &[M, K], BufferKind::Factor);
        let v = b.buf("V", &[N, K], BufferKind::Factor);
        let uv = b.buf("uv", &[NNZ, K], BufferKind::State);
        let vu = b.buf("vu", &[NNZ, K], BufferKind::State);
        let program = b.kernel(vec![
            Stmt::KhatriRao {
                dst: uv,
                a: u,
                b: v,
            },
            Stmt::KhatriRao {
                dst: vu,
                a: v,
                b: u,
            },
        ]);
        let mut gpu = GpuBackend::new(&program, ctx, precision).expect("compiles");
        let mut rng = Lcg(5);
        for (m, n, k) in [
            (1, 1, 1),
            (3, 4, 2),
            (0, 5, 3),
            (7, 0, 2),
            (9, 11, 0),
            (30, 17, 5),
        ] {
            let inputs = [(u, rng.matrix(m, k)), (v, rng.matrix(n, k))];
            compare(
                &program,
                &mut gpu,
                &[m, n, k, m * n],
                &inputs,
                tol(precision, 1),
                &format!("khatri_rao {precision:?}"),
            );
        }
    }
}

#[test]
fn khatri_rao_adjoint_and_copy_match_the_interpreter() {
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        // Three hidden units per subnetwork: n = 3, and the multiples 3·k and 3·m.
        let mut b = Builder::new();
        for (name, base) in [("3k", K), ("3m", M)] {
            b.program.dims.push(Dim {
                name: name.into(),
                kind: DimKind::Scaled { base, factor: 3 },
            });
        }
        let (nk, mn) = (DimId(4), DimId(5));
        let src = b.buf("src", &[mn, K], BufferKind::Arg);
        let fast = b.buf("fast", &[N, K], BufferKind::Arg);
        let slow = b.buf("slow", &[M, K], BufferKind::Arg);
        let over_fast = b.buf("over_fast", &[M, K], BufferKind::State);
        let over_slow = b.buf("over_slow", &[N, K], BufferKind::State);
        let wide = b.buf("wide", &[M, nk], BufferKind::State);
        let program = b.kernel(vec![
            Stmt::KhatriRaoAdjoint {
                dst: over_fast,
                src,
                other: fast,
                over_fast: true,
            },
            Stmt::KhatriRaoAdjoint {
                dst: over_slow,
                src,
                other: slow,
                over_fast: false,
            },
            Stmt::Copy { dst: wide, src },
        ]);
        let mut gpu = GpuBackend::new(&program, ctx, precision).expect("compiles");
        let mut rng = Lcg(9);
        for (m, k) in [(1, 1), (4, 2), (0, 3), (5, 0), (40, 7)] {
            let inputs = [
                (src, rng.matrix(3 * m, k)),
                (fast, rng.matrix(3, k)),
                (slow, rng.matrix(m, k)),
            ];
            compare(
                &program,
                &mut gpu,
                &[m, 3, k, 0, 3 * k, 3 * m],
                &inputs,
                tol(precision, m.max(3)),
                &format!("khatri_rao_adjoint {precision:?}"),
            );
        }
    }
}

#[test]
fn sampled_and_sparse_products_match_the_interpreter() {
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        let mut b = Builder::new();
        let y = b.buf("Y", &[NNZ], BufferKind::Observed { rows: M, cols: N });
        let u = b.buf("U", &[M, K], BufferKind::Factor);
        let v = b.buf("V", &[N, K], BufferKind::Factor);
        let pred = b.buf("pred", &[NNZ], BufferKind::Temp);
        let grad = b.buf("grad", &[NNZ], BufferKind::State);
        let left = b.buf("left", &[M, K], BufferKind::State);
        let right = b.buf("right", &[N, K], BufferKind::State);
        let spmm = |dst, values, b, trans, alpha, accumulate| Stmt::SpMM {
            dst,
            pattern: y,
            values,
            b,
            trans,
            alpha,
            accumulate,
        };
        let program = b.kernel(vec![
            Stmt::Sample {
                dst: pred,
                pattern: y,
                a: u,
                b: v,
            },
            Stmt::Map {
                dst: grad,
                expr: Expr::buf(pred).minus(Expr::buf(y)),
            },
            spmm(left, grad, v, false, 1.0, false),
            spmm(left, y, v, false, -2.0, true),
            spmm(right, grad, u, true, 0.5, false),
            spmm(right, y, u, true, 1.0, true),
        ]);
        let mut gpu = GpuBackend::new(&program, ctx, precision).expect("compiles");
        let mut rng = Lcg(2);
        for (m, n, k, fraction) in [
            (1, 1, 1, 1.0),
            (20, 30, 3, 0.2),
            (300, 7, 1, 0.5),
            (9, 11, 0, 0.5),
            (40, 50, 17, 0.0),
            (257, 129, 5, 0.1),
        ] {
            let obs = rng.observed(m, n, fraction);
            let nnz = obs.len();
            let inputs = [
                (y, Value::Observed(obs)),
                (u, rng.matrix(m, k)),
                (v, rng.matrix(n, k)),
            ];
            compare(
                &program,
                &mut gpu,
                &[m, n, k, nnz],
                &inputs,
                tol(precision, k.max(m).max(n)),
                &format!("sample/spmm {precision:?}"),
            );
        }
    }
}

#[test]
fn maps_and_sums_match_the_interpreter() {
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        let mut b = Builder::new();
        let x = b.buf("X", &[M, N], BufferKind::Input);
        let s = b.buf("s", &[], BufferKind::Arg);
        let t = b.buf("t", &[], BufferKind::Arg);
        let out = b.buf("out", &[M, N], BufferKind::State);
        let out2 = b.buf("out2", &[M, N], BufferKind::State);
        let total = b.buf("total", &[], BufferKind::State);
        let scalar_sum = b.buf("scalar_sum", &[], BufferKind::State);
        let scalar_map = b.buf("scalar_map", &[], BufferKind::State);
        let xs = || Expr::buf(x);
        let a = || xs().un(Unary::Abs);
        // Every operation, with scalars broadcast.
        let everything = xs()
            .un(Unary::Square)
            .times(Expr::buf(s))
            .plus(a().un(Unary::Sqrt))
            .minus(xs().times(Expr::c(3.0)).un(Unary::Exp))
            .plus(a().un(Unary::Log1p))
            .plus(xs().times(Expr::c(20.0)).un(Unary::Sigmoid))
            .plus(xs().times(Expr::c(-30.0)).un(Unary::Softplus))
            .plus(a().un(Unary::XLogX))
            .plus(xs().bin(Binary::Div, Expr::buf(t).plus(Expr::c(2.0))))
            .plus(xs().bin(Binary::Min, Expr::c(0.25)).un(Unary::Neg))
            .plus(xs().bin(Binary::Max, Expr::buf(s)))
            .plus(xs().minus(Expr::c(0.1)).un(Unary::Step));
        let program = b.kernel(vec![
            Stmt::Map {
                dst: out,
                expr: everything,
            },
            Stmt::Map {
                dst: out2,
                expr: Expr::buf(out).times(Expr::c(0.5)),
            },
            // The destination read in place.
            Stmt::Map {
                dst: out2,
                expr: Expr::buf(out2).minus(Expr::buf(x)),
            },
            Stmt::Sum {
                dst: total,
                expr: Expr::buf(out2).times(Expr::buf(x)).plus(Expr::buf(s)),
            },
            Stmt::Sum {
                dst: scalar_sum,
                expr: Expr::buf(s).times(Expr::buf(t)),
            },
            Stmt::Map {
                dst: scalar_map,
                expr: Expr::buf(total).un(Unary::Neg).plus(Expr::buf(s)),
            },
        ]);
        let mut gpu = GpuBackend::new(&program, ctx, precision).expect("compiles");
        let mut rng = Lcg(3);
        for (m, n) in [(1, 1), (0, 5), (3, 7), (255, 1), (257, 3), (300, 301)] {
            let inputs = [
                (x, rng.matrix(m, n)),
                (s, Value::Scalar(0.75)),
                (t, Value::Scalar(-0.5)),
            ];
            // Sums of m·n terms: the tolerance grows with the tree's depth, not the count.
            compare(
                &program,
                &mut gpu,
                &[m, n, 0, 0],
                &inputs,
                tol(precision, 64),
                &format!("map/sum {precision:?}"),
            );
        }
    }
}

fn gauges() -> Vec<Gauge> {
    let g = |terms: &[(f64, GaugeAtom)], nonneg| Gauge {
        terms: terms.to_vec(),
        nonneg,
    };
    use GaugeAtom::*;
    vec![
        g(&[(1.0, L2)], false),
        g(&[(1.0, L2)], true),
        g(&[(0.7, L1)], false),
        g(&[(1.3, Linf)], false),
        g(&[(2.0, Linf)], true),
        g(&[(1.0, L2), (0.5, L1)], false),
        g(&[(1.0, L2), (0.3, Tv)], false),
        g(&[(0.5, Tv), (1.0, L2), (0.2, L1)], true),
    ]
}

#[test]
fn column_gauges_and_proxes_match_the_interpreter() {
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        for gauge in gauges() {
            let mut b = Builder::new();
            let src = b.buf("src", &[M, K], BufferKind::Arg);
            let w = b.buf("w", &[K], BufferKind::Arg);
            let value = b.buf("value", &[K], BufferKind::State);
            let out = b.buf("out", &[M, K], BufferKind::State);
            let program = b.kernel(vec![
                Stmt::ColumnGauge {
                    dst: value,
                    src,
                    gauge: gauge.clone(),
                },
                Stmt::ColumnProx {
                    dst: out,
                    src,
                    weights: w,
                    gauge: gauge.clone(),
                },
            ]);
            let mut gpu = GpuBackend::new(&program, Arc::clone(&ctx), precision).expect("compiles");
            let mut rng = Lcg(4);
            for (m, k) in [(1, 1), (2, 3), (0, 2), (5, 0), (40, 5), (300, 3)] {
                // Piecewise-constant columns plus noise (TV has jumps to find), and weights
                // from 0 (no shrinkage) to large (everything shrinks to 0).
                let mut src_value = Array2::zeros((m, k));
                for ((r, c), x) in src_value.indexed_iter_mut() {
                    *x = ((r / 4 + c) % 3) as f64 - 1.0 + 0.3 * rng.next();
                }
                let weights: Array1<f64> = (0..k)
                    .map(|c| [0.0, 0.05, 0.4, 3.0, 40.0][c % 5] * (1.0 + 0.1 * rng.next()))
                    .collect();
                let inputs = [(src, Value::Matrix(src_value)), (w, Value::Vector(weights))];
                compare(
                    &program,
                    &mut gpu,
                    &[m, 0, k, 0],
                    &inputs,
                    tol(precision, 4 * m),
                    &format!("gauge {gauge} {precision:?}"),
                );
            }
        }
    }
}

#[test]
fn a_larger_gauge_prox_run_on_many_columns() {
    // More columns than a workgroup, the weights varied per column.
    let Some(ctx) = device(Precision::F32) else {
        return;
    };
    let gauge = Gauge {
        terms: vec![(1.0, GaugeAtom::L2), (0.4, GaugeAtom::Tv)],
        nonneg: false,
    };
    let mut b = Builder::new();
    let src = b.buf("src", &[M, K], BufferKind::Arg);
    let w = b.buf("w", &[K], BufferKind::Arg);
    let out = b.buf("out", &[M, K], BufferKind::State);
    let program = b.kernel(vec![Stmt::ColumnProx {
        dst: out,
        src,
        weights: w,
        gauge,
    }]);
    let mut gpu = GpuBackend::new(&program, ctx, Precision::F32).expect("compiles");
    let mut rng = Lcg(5);
    let (m, k) = (23, 300);
    let inputs = [
        (src, rng.matrix(m, k)),
        (w, Value::Vector((0..k).map(|c| c as f64 * 0.01).collect())),
    ];
    compare(
        &program,
        &mut gpu,
        &[m, 0, k, 0],
        &inputs,
        tol(Precision::F32, 4 * m),
        "prox l2+tv, 300 columns",
    );
}

#[test]
fn reading_an_unset_or_stale_buffer_is_an_error_like_the_interpreter() {
    let Some(ctx) = device(Precision::F32) else {
        return;
    };
    let (program, [a, at, b, bt]) = gemm_program();
    let mut gpu = GpuBackend::new(&program, ctx, Precision::F32).expect("compiles");
    for (d, e) in [3, 4, 2, 0].iter().enumerate() {
        gpu.bind_dim(DimId(d as u32), *e);
    }
    assert!(matches!(
        gpu.run(KernelId(0)),
        Err(crate::ExecError::Unset(_))
    ));
    let mut rng = Lcg(6);
    gpu.set(a, rng.matrix(3, 2)).expect("set");
    gpu.set(at, rng.matrix(2, 3)).expect("set");
    gpu.set(b, rng.matrix(2, 4)).expect("set");
    gpu.set(bt, rng.matrix(4, 2)).expect("set");
    gpu.run(KernelId(0)).expect("runs");
    // The size changes: the old values no longer fit.
    gpu.bind_dim(K, 5);
    assert!(matches!(
        gpu.run(KernelId(0)),
        Err(crate::ExecError::Shape { .. })
    ));
    assert!(matches!(
        gpu.set(a, rng.matrix(3, 2)),
        Err(crate::ExecError::Shape { .. })
    ));
}

#[test]
fn every_statement_kind_validates_in_both_precisions() {
    // Programs of the tests above, through naga (no device needed).
    let (gemm, _) = gemm_program();
    for precision in PRECISIONS {
        let text = emit_wgsl(&gemm, precision).expect("emits");
        assert!(text.contains(&format!("alias T = {};", precision.wgsl())));
        for shader in wgsl::shaders(&gemm, precision).expect("shaders").shaders {
            validate_wgsl(&shader.label, &shader.source, precision).expect("valid");
        }
        for gauge in gauges() {
            let mut b = Builder::new();
            let src = b.buf("src", &[M, K], BufferKind::Arg);
            let w = b.buf("w", &[K], BufferKind::Arg);
            let out = b.buf("out", &[M, K], BufferKind::State);
            let program = b.kernel(vec![Stmt::ColumnProx {
                dst: out,
                src,
                weights: w,
                gauge,
            }]);
            for shader in wgsl::shaders(&program, precision).expect("shaders").shaders {
                validate_wgsl(&shader.label, &shader.source, precision)
                    .unwrap_or_else(|e| panic!("{e}\n{}", shader.source));
            }
        }
    }
}

#[test]
fn a_broken_shader_is_an_error_not_a_panic() {
    let e = validate_wgsl("broken", "fn main( {", Precision::F32).expect_err("invalid");
    assert!(e.to_string().contains("broken"), "{e}");
    // f64 needs the capability.
    let e = validate_wgsl(
        "f64",
        "@group(0) @binding(0) var<storage, read_write> x: array<f64>;\n@compute @workgroup_size(1) fn main() { x[0] = 1.0lf; }",
        Precision::F32,
    )
    .expect_err("f64 without the capability");
    assert!(e.to_string().contains("FLOAT64"), "{e}");
}

#[test]
fn constants_the_scalar_type_cannot_hold_are_errors() {
    let mut b = Builder::new();
    let x = b.buf("x", &[M], BufferKind::State);
    let program = b.kernel(vec![Stmt::Map {
        dst: x,
        expr: Expr::c(1e300),
    }]);
    assert!(matches!(
        emit_wgsl(&program, Precision::F32),
        Err(super::GpuError::Constant(..))
    ));
    assert!(emit_wgsl(&program, Precision::F64).is_ok());
}
