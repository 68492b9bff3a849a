//! Differential tests: every statement kind, generated code against the reference
//! interpreter, on random shapes that include 0, 1, odd lengths and vector tails: equal in
//! f64, to a tolerance scaled by size in f32.

use ndarray::{Array1, Array2};
use proptest::prelude::*;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{JitBackend, Precision};
use crate::backend::Backend;
use crate::interp::Interpreter;
use crate::kir::*;
use crate::value::{Observed, Value};

/// A one-kernel program under construction.
struct Fixture {
    dims: Vec<Dim>,
    buffers: Vec<Buffer>,
    values: Vec<(BufId, Value)>,
    extents: Vec<usize>,
    rng: ChaCha8Rng,
}

impl Fixture {
    fn new(seed: u64) -> Fixture {
        Fixture {
            dims: Vec::new(),
            buffers: Vec::new(),
            values: Vec::new(),
            extents: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn dim(&mut self, name: &str, extent: usize) -> DimId {
        self.dims.push(Dim {
            name: name.into(),
            kind: DimKind::Data,
        });
        self.extents.push(extent);
        DimId(self.dims.len() as u32 - 1)
    }

    /// `factor` times `base`, bound with it (a subnetwork layout's `h·r`).
    fn scaled(&mut self, name: &str, base: DimId, factor: u32) -> DimId {
        self.dims.push(Dim {
            name: name.into(),
            kind: DimKind::Scaled { base, factor },
        });
        self.extents
            .push(self.extents[base.0 as usize] * factor as usize);
        DimId(self.dims.len() as u32 - 1)
    }

    fn buffer(&mut self, name: &str, shape: Vec<DimId>, kind: BufferKind) -> BufId {
        self.buffers.push(Buffer {
            name: name.into(),
            shape,
            kind,
        });
        BufId(self.buffers.len() as u32 - 1)
    }

    fn normal(&mut self) -> f64 {
        // Box–Muller; the tests need spread, not exact normality.
        let u: f64 = self.rng.random::<f64>().max(1e-12);
        let v: f64 = self.rng.random::<f64>();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }

    /// A buffer holding random values.
    fn input(&mut self, name: &str, shape: Vec<DimId>) -> BufId {
        let extents: Vec<usize> = shape.iter().map(|d| self.extents[d.0 as usize]).collect();
        let id = self.buffer(name, shape, BufferKind::Arg);
        let value = match extents.as_slice() {
            [] => Value::Scalar(self.normal()),
            [n] => Value::Vector(Array1::from_shape_fn(*n, |_| self.normal())),
            [r, c] => Value::Matrix(Array2::from_shape_fn((*r, *c), |_| self.normal())),
            _ => unreachable!("tests use at most two axes"),
        };
        self.values.push((id, value));
        id
    }

    /// An observed input on a random pattern of an `rows × cols` matrix.
    fn observed(&mut self, rows: DimId, cols: DimId) -> (BufId, DimId) {
        let (m, n) = (self.extents[rows.0 as usize], self.extents[cols.0 as usize]);
        let mut entries = Vec::new();
        for i in 0..m {
            for j in 0..n {
                if self.rng.random::<f64>() < 0.4 {
                    entries.push((i as u32, j as u32, self.normal()));
                }
            }
        }
        let observed = Observed::from_triplets(m, n, entries);
        let nnz = self.dim("nnz", observed.len());
        let id = self.buffer("Y", vec![nnz], BufferKind::Observed { rows, cols });
        self.values.push((id, Value::Observed(observed)));
        (id, nnz)
    }

    fn program(&self, body: Vec<Stmt>) -> Program {
        Program {
            name: "test".into(),
            dims: self.dims.clone(),
            buffers: self.buffers.clone(),
            kernels: vec![Kernel {
                name: "k".into(),
                body,
            }],
            plan: Plan::for_kernel_tests(DimId(0)),
        }
    }

    /// Runs the kernel in the interpreter and in generated code and compares `outputs`.
    fn compare(&self, body: Vec<Stmt>, outputs: &[BufId], precision: Precision) {
        let program = self.program(body);
        let mut interp = Interpreter::new(&program);
        let mut jit = match JitBackend::with_precision(&program, precision) {
            Ok(j) => j,
            Err(e) => panic!("codegen failed: {e}\n{program}"),
        };
        for backend in [&mut interp as &mut dyn Backend, &mut jit] {
            for (k, extent) in self.extents.iter().enumerate() {
                backend.bind_dim(DimId(k as u32), *extent);
            }
            for (id, value) in &self.values {
                let value = match (precision, value) {
                    // The f32 back end sees f32-rounded inputs; so does the oracle.
                    (Precision::F32, v) => round_f32(v),
                    (Precision::F64, v) => v.clone(),
                };
                backend.set(*id, value).expect("inputs fit");
            }
            backend.run(KernelId(0)).expect("the kernel runs");
        }
        for id in outputs {
            let expected = flatten(&interp.get(*id).expect("interp wrote it"));
            let found = flatten(&jit.get(*id).expect("jit wrote it"));
            assert_eq!(expected.len(), found.len());
            let n = expected.len().max(1) as f64;
            let scale = expected.iter().fold(1.0f64, |m, v| m.max(v.abs()));
            // f64 follows the interpreter's operation order exactly (`kir::ordered_sum`);
            // f32 rounds every operation differently.
            let tol = match precision {
                Precision::F64 => 0.0,
                Precision::F32 => 2e-5 * n * scale,
            };
            for (k, (e, f)) in expected.iter().zip(&found).enumerate() {
                let same = (e.is_nan() && f.is_nan()) || (e - f).abs() <= tol;
                assert!(
                    same,
                    "%{}[{k}]: interp {e}, jit {f} (tolerance {tol})\n{program}",
                    program.buffer(*id).name
                );
            }
        }
    }
}

fn round_f32(v: &Value) -> Value {
    let r = |x: f64| x as f32 as f64;
    match v {
        Value::Scalar(s) => Value::Scalar(r(*s)),
        Value::Vector(a) => Value::Vector(a.mapv(r)),
        Value::Matrix(a) => Value::Matrix(a.mapv(r)),
        Value::Observed(o) => Value::Observed(Observed {
            values: o.values.mapv(r),
            ..o.clone()
        }),
    }
}

fn flatten(v: &Value) -> Vec<f64> {
    match v {
        Value::Scalar(s) => vec![*s],
        Value::Vector(a) => a.to_vec(),
        Value::Matrix(a) => a.iter().copied().collect(),
        Value::Observed(o) => o.values.to_vec(),
    }
}

fn precision(f32: bool) -> Precision {
    if f32 { Precision::F32 } else { Precision::F64 }
}

/// A random elementwise expression over `arrays` and `scalars`, every operation used on
/// its domain (square roots and logarithms of magnitudes, division by 1 + x²).
fn random_expr(rng: &mut ChaCha8Rng, arrays: &[BufId], scalars: &[BufId], depth: u32) -> Expr {
    let leaf = depth == 0 || rng.random::<f64>() < 0.25;
    if leaf {
        let pick = rng.random_range(0..4u32);
        return match pick {
            0 if !scalars.is_empty() => Expr::buf(scalars[rng.random_range(0..scalars.len())]),
            1 => Expr::c(((rng.random::<f64>() * 4.0 - 2.0) * 1000.0).round() / 1000.0),
            _ => Expr::buf(arrays[rng.random_range(0..arrays.len())]),
        };
    }
    let a = random_expr(rng, arrays, scalars, depth - 1);
    match rng.random_range(0..16u32) {
        15 => a.un(Unary::Step),
        0 => a.un(Unary::Neg),
        1 => a.un(Unary::Abs),
        2 => a.un(Unary::Square),
        3 => a.un(Unary::Abs).un(Unary::Sqrt),
        4 => a.bin(Binary::Min, Expr::c(3.0)).un(Unary::Exp),
        5 => a.un(Unary::Abs).un(Unary::Log1p),
        6 => a.un(Unary::Sigmoid),
        7 => a.un(Unary::Softplus),
        8 => a.un(Unary::Abs).un(Unary::XLogX),
        op => {
            let b = random_expr(rng, arrays, scalars, depth - 1);
            match op {
                9 => a.plus(b),
                10 => a.minus(b),
                11 => a.times(b),
                12 => a.bin(Binary::Div, Expr::c(1.0).plus(b.un(Unary::Square))),
                13 => a.bin(Binary::Min, b),
                _ => a.bin(Binary::Max, b),
            }
        }
    }
}

fn random_gauge(rng: &mut ChaCha8Rng) -> Gauge {
    let mut terms = Vec::new();
    for atom in [GaugeAtom::L1, GaugeAtom::L2, GaugeAtom::Linf, GaugeAtom::Tv] {
        if rng.random::<f64>() < 0.5 {
            terms.push((0.25 + rng.random::<f64>(), atom));
        }
    }
    if terms.is_empty() {
        terms.push((1.0, GaugeAtom::L2));
    }
    Gauge {
        terms,
        nonneg: rng.random::<f64>() < 0.3,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn gemm_matches(m in 0usize..9, n in 0usize..9, k in 0usize..9, ta: bool, tb: bool,
                    accumulate: bool, f32: bool, seed: u64) {
        let mut fx = Fixture::new(seed);
        let (dm, dn, dk) = (fx.dim("m", m), fx.dim("n", n), fx.dim("k", k));
        let a = fx.input("a", if ta { vec![dk, dm] } else { vec![dm, dk] });
        let b = fx.input("b", if tb { vec![dn, dk] } else { vec![dk, dn] });
        let dst = fx.input("c", vec![dm, dn]);
        let alpha = fx.normal();
        let body = vec![Stmt::Gemm { dst, a, trans_a: ta, b, trans_b: tb, alpha, accumulate }];
        fx.compare(body, &[dst], precision(f32));
    }

    #[test]
    fn sample_matches(m in 0usize..9, n in 0usize..9, r in 0usize..9, f32: bool, seed: u64) {
        let mut fx = Fixture::new(seed);
        let (dm, dn, dr) = (fx.dim("m", m), fx.dim("n", n), fx.dim("r", r));
        let (pattern, nnz) = fx.observed(dm, dn);
        let a = fx.input("a", vec![dm, dr]);
        let b = fx.input("b", vec![dn, dr]);
        let dst = fx.buffer("s", vec![nnz], BufferKind::State);
        fx.compare(vec![Stmt::Sample { dst, pattern, a, b }], &[dst], precision(f32));
    }

    #[test]
    fn khatri_rao_matches(m in 0usize..7, n in 0usize..7, r in 0usize..9, f32: bool, seed: u64) {
        let mut fx = Fixture::new(seed);
        let (dm, dn, dr) = (fx.dim("m", m), fx.dim("n", n), fx.dim("r", r));
        let dmn = fx.dim("mn", m * n);
        let a = fx.input("a", vec![dm, dr]);
        let b = fx.input("b", vec![dn, dr]);
        let dst = fx.buffer("kr", vec![dmn, dr], BufferKind::State);
        let back = fx.buffer("kr_t", vec![dmn, dr], BufferKind::State);
        let body = vec![
            Stmt::KhatriRao { dst, a, b },
            Stmt::KhatriRao { dst: back, a: b, b: a },
        ];
        fx.compare(body, &[dst, back], precision(f32));
    }

    #[test]
    fn khatri_rao_adjoint_and_copy_match(m in 0usize..7, n in 1u32..7, r in 0usize..9,
                                         f32: bool, seed: u64) {
        let mut fx = Fixture::new(seed);
        let (dm, dr) = (fx.dim("m", m), fx.dim("r", r));
        let dn = fx.dim("n", n as usize);
        let dmn = fx.scaled("mn", dm, n);
        let dnr = fx.scaled("nr", dr, n);
        let src = fx.input("src", vec![dmn, dr]);
        let fast = fx.input("fast", vec![dn, dr]);
        let slow = fx.input("slow", vec![dm, dr]);
        let over_fast = fx.buffer("over_fast", vec![dm, dr], BufferKind::State);
        let over_slow = fx.buffer("over_slow", vec![dn, dr], BufferKind::State);
        let wide = fx.buffer("wide", vec![dm, dnr], BufferKind::State);
        let back = fx.buffer("back", vec![dmn, dr], BufferKind::State);
        let body = vec![
            Stmt::KhatriRaoAdjoint { dst: over_fast, src, other: fast, over_fast: true },
            Stmt::KhatriRaoAdjoint { dst: over_slow, src, other: slow, over_fast: false },
            Stmt::Copy { dst: wide, src },
            Stmt::Copy { dst: back, src: wide },
        ];
        fx.compare(body, &[over_fast, over_slow, wide, back], precision(f32));
    }

    #[test]
    fn spmm_matches(m in 0usize..9, n in 0usize..9, r in 0usize..9, trans: bool,
                    accumulate: bool, own_values: bool, f32: bool, seed: u64) {
        let mut fx = Fixture::new(seed);
        let (dm, dn, dr) = (fx.dim("m", m), fx.dim("n", n), fx.dim("r", r));
        let (pattern, nnz) = fx.observed(dm, dn);
        let values = if own_values { fx.input("v", vec![nnz]) } else { pattern };
        let b = fx.input("b", vec![if trans { dm } else { dn }, dr]);
        let dst = fx.input("c", vec![if trans { dn } else { dm }, dr]);
        let alpha = fx.normal();
        let body = vec![Stmt::SpMM { dst, pattern, values, b, trans, alpha, accumulate }];
        fx.compare(body, &[dst], precision(f32));
    }

    #[test]
    fn map_and_sum_match(m in 0usize..7, n in 0usize..11, depth in 0u32..4, in_place: bool,
                         f32: bool, seed: u64) {
        let mut fx = Fixture::new(seed);
        let (dm, dn) = (fx.dim("m", m), fx.dim("n", n));
        let x = fx.input("x", vec![dm, dn]);
        let y = fx.input("y", vec![dm, dn]);
        let s = fx.input("s", vec![]);
        let t = fx.buffer("t", vec![], BufferKind::State);
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
        let dst = if in_place { x } else { fx.buffer("z", vec![dm, dn], BufferKind::State) };
        let map = random_expr(&mut rng, &[x, y], &[s], depth);
        let sum = random_expr(&mut rng, &[x, y], &[s], depth);
        // A scalar written by the first statement and read by the next two.
        let body = vec![
            Stmt::Sum { dst: t, expr: sum },
            Stmt::Map { dst, expr: map.plus(Expr::buf(t)) },
            Stmt::Sum { dst: s, expr: Expr::buf(dst).times(Expr::buf(y)) },
        ];
        fx.compare(body, &[t, dst, s], precision(f32));
    }

    #[test]
    fn scalar_only_sum_matches(f32: bool, seed: u64) {
        let mut fx = Fixture::new(seed);
        let s = fx.input("s", vec![]);
        let t = fx.buffer("t", vec![], BufferKind::State);
        let body = vec![Stmt::Sum { dst: t, expr: Expr::buf(s).times(Expr::c(3.0)) }];
        fx.compare(body, &[t], precision(f32));
    }

    #[test]
    fn column_gauge_and_prox_match(n in 0usize..12, k in 0usize..6, in_place: bool, f32: bool,
                                   seed: u64) {
        let mut fx = Fixture::new(seed);
        let (dn, dk) = (fx.dim("n", n), fx.dim("k", k));
        let src = fx.input("x", vec![dn, dk]);
        let weights = fx.input("w", vec![dk]);
        let gauges = fx.buffer("g", vec![dk], BufferKind::State);
        let dst = if in_place { src } else { fx.buffer("y", vec![dn, dk], BufferKind::State) };
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9a09e);
        let gauge = random_gauge(&mut rng);
        let body = vec![
            Stmt::ColumnGauge { dst: gauges, src, gauge: gauge.clone() },
            Stmt::ColumnProx { dst, src, weights, gauge },
        ];
        fx.compare(body, &[gauges, dst], precision(f32));
    }
}

#[test]
fn reading_an_unset_buffer_is_an_error_not_a_crash() {
    let mut fx = Fixture::new(1);
    let dm = fx.dim("m", 3);
    let x = fx.buffer("x", vec![dm], BufferKind::Arg);
    let y = fx.buffer("y", vec![dm], BufferKind::State);
    let program = fx.program(vec![Stmt::Map {
        dst: y,
        expr: Expr::buf(x).times(Expr::c(2.0)),
    }]);
    let mut jit = JitBackend::new(&program).expect("compiles");
    jit.bind_dim(dm, 3);
    assert_eq!(
        jit.run(KernelId(0)),
        Err(crate::ExecError::Unset("x".into()))
    );
    // A value of the wrong shape is refused at `set`, before any code runs.
    let wrong = Value::Vector(Array1::zeros(4));
    assert!(matches!(
        jit.set(x, wrong),
        Err(crate::ExecError::Shape { .. })
    ));
    // Rebinding the extent invalidates values shaped by the old one.
    jit.set(x, Value::Vector(Array1::ones(3))).expect("fits");
    jit.run(KernelId(0)).expect("runs");
    assert_eq!(jit.get(y), Ok(Value::Vector(Array1::from(vec![2.0; 3]))));
    jit.bind_dim(dm, 5);
    assert_eq!(jit.get(y), Err(crate::ExecError::Unset("y".into())));
}
