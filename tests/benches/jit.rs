//! Benchmarks of the JIT back end (ratios measured in one run, printed; never asserted):
//!
//! 1. JIT compile time of every standard-library model that lowers (goal: < 50 ms each);
//! 2. time per descent iteration, `jit` against `interp`, on dense low-rank problems
//!    (1000 × 500 and 4000 × 2000, r = 20) and 2000 × 1000 completion with 5% observed;
//! 3. on the dense problems, time per iteration against the time of the GEMMs one iteration
//!    executes, measured alone (goal: at most 1.5×).
//!
//! `cargo bench -p hfc-tests --bench jit`

#![allow(clippy::print_stdout)]

use std::time::Instant;

use hfc_runtime::kir::{Role, Stmt};
use hfc_runtime::synth::Synth;
use hfc_runtime::{Value, linalg};
use hfc_tests::{BackendKind, NUCLEAR, lower_text, options, solve_with};
use ndarray::Array2;

fn compile_times() {
    for (name, text) in hfc_stdlib::FILES {
        let Ok(lowered) = lower_text(text, &[]) else {
            continue;
        };
        let best = (0..5)
            .map(|_| {
                let clock = Instant::now();
                let jit = hfc_runtime::cpu::JitBackend::new(&lowered.program).expect("compiles");
                drop(jit);
                clock.elapsed().as_secs_f64()
            })
            .fold(f64::INFINITY, f64::min);
        println!(
            "compile {name}: {:.1} ms for {} kernels (best of 5)",
            best * 1e3,
            lowered.program.kernels.len()
        );
    }
}

/// Seconds per descent iteration of the solver on a back end (r columns from the start).
fn per_iteration(kind: BackendKind, text: &str, lambda: f64, data: &Value, rank: usize) -> f64 {
    let mut opts = options(1e-12);
    opts.max_iter = 40;
    opts.init_rank = rank;
    let solved =
        solve_with(kind, text, &[("lambda", lambda)], data.clone(), &opts).expect("solves");
    let s = solved.solution;
    s.seconds_descent / s.iterations.max(1) as f64
}

/// Per-iteration seconds (interp, jit): the best of three runs each, alternating back ends so
/// that a slow spell of the machine does not favour one.
fn alternating(text: &str, data: &Value, rank: usize) -> (f64, f64) {
    let (mut interp, mut jit) = (f64::INFINITY, f64::INFINITY);
    for _ in 0..3 {
        interp = interp.min(per_iteration(BackendKind::Interp, text, 1.0, data, rank));
        jit = jit.min(per_iteration(BackendKind::Jit, text, 1.0, data, rank));
    }
    (interp, jit)
}

/// Seconds of the GEMMs one descent iteration runs (both block gradients, the loss after the
/// right step, and the solver's two r × r Gram matrices), each timed alone on operands of
/// the iteration's shapes.
fn gemm_seconds(m: usize, n: usize, r: usize) -> f64 {
    let lowered = lower_text(NUCLEAR, &[]).expect("lowers");
    let program = &lowered.program;
    let (m_dim, n_dim) = (lowered.data_dims[0], lowered.data_dims[1]);
    let rank = program.plan.rank;
    let extent = |d| {
        if d == m_dim {
            m
        } else if d == n_dim {
            n
        } else if d == rank {
            r
        } else {
            1
        }
    };
    let mut synth = Synth::new(3);
    let mut total = 0.0;
    let roles = [Role::Grad(0), Role::Grad(1), Role::ValueAfterLast];
    for role in roles {
        let kernel = program.kernel(program.plan.kernel(role).expect("role"));
        for stmt in &kernel.body {
            if let Stmt::Gemm {
                a,
                trans_a,
                b,
                trans_b,
                ..
            } = stmt
            {
                let shape = |id| {
                    let s = &program.buffer(id).shape;
                    (extent(s[0]), extent(s[1]))
                };
                let (a_shape, b_shape) = (shape(*a), shape(*b));
                let av = synth.normal(a_shape.0, a_shape.1);
                let bv = synth.normal(b_shape.0, b_shape.1);
                total += best_of(5, || {
                    std::hint::black_box(linalg::gemm(
                        av.view(),
                        *trans_a,
                        bv.view(),
                        *trans_b,
                        1.0,
                    ));
                });
            }
        }
    }
    // The step sizes: λ_max of UᵀU and VᵀV.
    for rows in [m, n] {
        let f: Array2<f64> = synth.normal(rows, r);
        total += best_of(5, || {
            std::hint::black_box(linalg::gemm(f.view(), true, f.view(), false, 1.0));
        });
    }
    total
}

fn best_of(k: usize, mut f: impl FnMut()) -> f64 {
    (0..k)
        .map(|_| {
            let clock = Instant::now();
            f();
            clock.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn dense(m: usize, n: usize, r: usize) {
    let mut synth = Synth::new(42);
    let mut y = synth.low_rank(m, n, r, false) * 10.0;
    synth.add_noise(&mut y, 0.1);
    let data = Value::Matrix(y);
    let (interp, jit) = alternating(NUCLEAR, &data, r);
    let gemm = gemm_seconds(m, n, r);
    println!(
        "lowrank {m}x{n} r={r}: per iteration jit {:.3} ms, interp {:.3} ms (jit/interp = {:.2}); GEMMs alone {:.3} ms (jit/GEMM = {:.2})",
        jit * 1e3,
        interp * 1e3,
        jit / interp,
        gemm * 1e3,
        jit / gemm
    );
}

fn completion(m: usize, n: usize, r: usize, fraction: f64) {
    let mut synth = Synth::new(7);
    let truth = synth.low_rank(m, n, r, false) * 10.0;
    let observed = synth.observe(&truth, fraction);
    let entries = observed.len();
    let data = Value::Observed(observed);
    let masked = NUCLEAR.replace("loss squared;", "loss squared on observed(Y);");
    let (interp, jit) = alternating(&masked, &data, r);
    println!(
        "completion {m}x{n} r={r}, {:.0}% observed ({entries} entries): per iteration jit {:.3} ms, interp {:.3} ms (jit/interp = {:.2})",
        fraction * 100.0,
        jit * 1e3,
        interp * 1e3,
        jit / interp
    );
}

/// Milliseconds per call of each kernel an iteration runs, on both back ends (where the
/// per-iteration difference comes from).
fn kernel_profile(m: usize, n: usize, r: usize) {
    use hfc_runtime::Backend;
    use hfc_runtime::kir::Slot;
    let lowered = lower_text(NUCLEAR, &[]).expect("lowers");
    let program = &lowered.program;
    let mut synth = Synth::new(5);
    let y = synth.normal(m, n);
    let u = synth.normal(m, r);
    let v = synth.normal(n, r);
    let mut line = format!("kernels {m}x{n} r={r} (ms per call, jit/interp):");
    let mut backends: Vec<Box<dyn Backend>> = vec![
        Box::new(hfc_runtime::cpu::JitBackend::new(program).expect("compiles")),
        Box::new(hfc_runtime::Interpreter::new(program)),
    ];
    for backend in &mut backends {
        backend.bind_dim(lowered.data_dims[0], m);
        backend.bind_dim(lowered.data_dims[1], n);
        backend.bind_dim(program.plan.rank, r);
        backend
            .set(lowered.target.1, Value::Matrix(y.clone()))
            .expect("binds");
        let slot = |s| program.plan.slot(s).expect("slot");
        backend
            .set(slot(Slot::Factor(0)), Value::Matrix(u.clone()))
            .expect("binds");
        backend
            .set(slot(Slot::Factor(1)), Value::Matrix(v.clone()))
            .expect("binds");
        backend
            .set(slot(Slot::Step(0)), Value::Matrix(u.clone()))
            .expect("binds");
        let weights = Value::Vector(ndarray::Array1::from_elem(r, 0.01));
        backend
            .set(slot(Slot::ProxWeights), weights)
            .expect("binds");
        backend
            .run(program.plan.kernel(Role::Setup).expect("setup"))
            .expect("runs");
    }
    for role in [
        Role::Grad(0),
        Role::Grad(1),
        Role::ValueAfterLast,
        Role::Gauge(0),
        Role::Prox(0),
    ] {
        let kernel = program.plan.kernel(role).expect("role");
        let times: Vec<f64> = backends
            .iter_mut()
            .map(|b| best_of(20, || b.run(kernel).expect("runs")))
            .collect();
        line += &format!(
            " {} {:.3}/{:.3}",
            role.name(),
            times[0] * 1e3,
            times[1] * 1e3
        );
    }
    println!("{line}");
}

fn main() {
    kernel_profile(1000, 500, 20);
    if std::env::args().any(|a| a == "--kernels") {
        return;
    }
    compile_times();
    dense(1000, 500, 20);
    dense(4000, 2000, 20);
    completion(2000, 1000, 20, 0.05);
}
