//! GPU benchmarks (measured in one run, printed; never asserted), on whatever adapter there is
//! (lavapipe, a CPU, where no GPU is lent: expect it to be slower than the interpreter):
//!
//! 1. time per descent iteration of nuclear-norm low-rank approximation, 1000 × 500, GPU
//!    (f32) against the interpreter, the same problem and iteration budget;
//! 2. the WGSL GEMM kernel's throughput in GFLOP/s (square, and the solver's Y·V shape).
//!
//! `cargo bench -p hfc-tests --bench gpu`

#![allow(clippy::print_stdout)]

use std::time::Instant;

use hfc_runtime::Value;
use hfc_runtime::backend::Backend;
use hfc_runtime::gpu::{GpuBackend, GpuContext, Precision};
use hfc_runtime::kir::*;
use hfc_runtime::machine::Machine;
use hfc_runtime::solve::{self, Solution};
use hfc_runtime::synth::Synth;
use hfc_tests::{NUCLEAR, options};

fn lower(text: &str, lambda: f64) -> hfc::lower::Lowered {
    let overrides = vec![("lambda".to_string(), lambda)];
    let checked = hfc::check_with("model.hfm", text, &mut hfc::NoFiles, &overrides);
    let report = &checked.models[0];
    hfc::lower::lower(
        report.ir.as_ref().expect("ir"),
        report.induced.as_ref().expect("induced"),
    )
    .expect("lowers")
}

fn run(
    backend: &mut dyn Backend,
    lowered: &hfc::lower::Lowered,
    y: &Value,
    iters: u64,
) -> Solution {
    let (rows, cols) = match y {
        Value::Matrix(a) => (a.nrows(), a.ncols()),
        _ => unreachable!(),
    };
    backend.bind_dim(lowered.data_dims[0], rows);
    backend.bind_dim(lowered.data_dims[1], cols);
    backend.set(lowered.target.1, y.clone()).expect("set");
    let mut opts = options(1e-12);
    opts.max_iter = iters;
    opts.init_rank = 20;
    let mut machine = Machine::new(&lowered.program, backend);
    solve::solve(&mut machine, &[rows, cols], &opts, &mut |_| {}).expect("solves")
}

fn lowrank(ctx: &std::sync::Arc<GpuContext>) {
    let (m, n, rank) = (1000, 500, 20);
    let mut synth = Synth::new(42);
    let mut y = synth.low_rank(m, n, rank, false) * 10.0;
    synth.add_noise(&mut y, 0.1);
    let y = Value::Matrix(y);
    let lowered = lower(NUCLEAR, 50.0);
    let iters = 40;
    let mut cpu = hfc_runtime::Interpreter::new(&lowered.program);
    let clock = Instant::now();
    let c = run(&mut cpu, &lowered, &y, iters);
    let cpu_total = clock.elapsed().as_secs_f64();
    let mut gpu = GpuBackend::new(&lowered.program, ctx.clone(), Precision::F32).expect("compiles");
    let clock = Instant::now();
    let g = run(&mut gpu, &lowered, &y, iters);
    let gpu_total = clock.elapsed().as_secs_f64();
    let per = |s: &Solution| s.seconds_descent / s.iterations.max(1) as f64;
    println!(
        "lowrank {m}x{n} (rank {} / {}), {} / {} descent iterations: gpu f32 {:.2} ms per iteration ({gpu_total:.2} s in all), interpreter {:.2} ms ({cpu_total:.2} s): ratio gpu/interp = {:.2}",
        g.rank(),
        c.rank(),
        g.iterations,
        c.iterations,
        per(&g) * 1e3,
        per(&c) * 1e3,
        per(&g) / per(&c)
    );
}

/// One GEMM kernel `C = A·B`.
fn gemm_program() -> Program {
    let dim = |name: &str| Dim {
        name: name.into(),
        kind: DimKind::Data,
    };
    let buf = |name: &str, shape: Vec<DimId>, kind| Buffer {
        name: name.into(),
        shape,
        kind,
    };
    let (m, n, k) = (DimId(0), DimId(1), DimId(2));
    Program {
        name: "gemm".into(),
        dims: vec![dim("m"), dim("n"), dim("k")],
        buffers: vec![
            buf("A", vec![m, k], BufferKind::Input),
            buf("B", vec![k, n], BufferKind::Input),
            buf("C", vec![m, n], BufferKind::State),
        ],
        kernels: vec![Kernel {
            name: "gemm".into(),
            body: vec![Stmt::Gemm {
                dst: BufId(2),
                a: BufId(0),
                trans_a: false,
                b: BufId(1),
                trans_b: false,
                alpha: 1.0,
                accumulate: false,
            }],
        }],
        plan: Plan::for_kernel_tests(k),
    }
}

fn gemm(ctx: &std::sync::Arc<GpuContext>, m: usize, n: usize, k: usize) {
    let program = gemm_program();
    let mut gpu = GpuBackend::new(&program, ctx.clone(), Precision::F32).expect("compiles");
    let mut synth = Synth::new(3);
    for (d, e) in [m, n, k].iter().enumerate() {
        gpu.bind_dim(DimId(d as u32), *e);
    }
    gpu.set(BufId(0), Value::Matrix(synth.low_rank(m, k, 4, false)))
        .expect("set");
    gpu.set(BufId(1), Value::Matrix(synth.low_rank(k, n, 4, false)))
        .expect("set");
    // Warm up (the first dispatch uploads and compiles lazily on some drivers).
    gpu.run(KernelId(0)).expect("runs");
    gpu.wait().expect("waits");
    let reps = 5;
    let clock = Instant::now();
    for _ in 0..reps {
        gpu.run(KernelId(0)).expect("runs");
    }
    gpu.wait().expect("waits");
    let seconds = clock.elapsed().as_secs_f64() / reps as f64;
    let flops = 2.0 * (m * n * k) as f64;
    println!(
        "wgsl gemm f32 {m}x{k} * {k}x{n}: {:.2} ms, {:.2} GFLOP/s",
        seconds * 1e3,
        flops / seconds / 1e9
    );
}

fn main() {
    let ctx = match GpuContext::open() {
        Ok(c) => c,
        Err(e) => {
            println!("skipped: {e}");
            return;
        }
    };
    println!("adapter: {}", ctx.describe());
    lowrank(&ctx);
    gemm(&ctx, 1024, 1024, 1024);
    gemm(&ctx, 1000, 20, 500);
}
