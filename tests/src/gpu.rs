//! The GPU back end on real models: every shader of every stdlib model and example that
//! lowers validates with naga (no device needed); a WGSL snapshot; and end to end on the
//! adapter there is (lavapipe in CI), the low-rank and completion models reach the
//! interpreter's objective and rank with the certificate recomputed in f64.
//!
//! Without an adapter the device tests skip with a message; `HFC_REQUIRE_GPU=1` makes that a
//! failure (CI sets it after installing Mesa's software Vulkan driver).

#![allow(clippy::print_stderr)]

use std::path::Path;
use std::sync::Arc;

use hfc_runtime::Value;
use hfc_runtime::backend::Backend;
use hfc_runtime::certify::{self, Certified};
use hfc_runtime::gpu::{GpuBackend, GpuContext, Precision, emit_wgsl, validate_wgsl, wgsl};
use hfc_runtime::kir::{DimId, DimKind, Program};
use hfc_runtime::machine::Machine;
use hfc_runtime::solve::{self, Solution};
use hfc_runtime::synth::Synth;
use hfc_tests::{NUCLEAR, golden, options, repo_dir, solve_text};

const PRECISIONS: [Precision; 2] = [Precision::F32, Precision::F64];

/// Every stdlib model and example that `hfc run` can run, lowered.
fn lowered_models() -> Vec<(String, Program)> {
    let mut sources: Vec<(String, String, String)> = hfc_stdlib::FILES
        .iter()
        .map(|(name, text)| (format!("std/{name}"), text.to_string(), String::new()))
        .collect();
    let dir = repo_dir().join("examples");
    let mut examples: Vec<_> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hfm"))
        .collect();
    examples.sort();
    for path in examples {
        let name = format!(
            "examples/{}",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        let text = std::fs::read_to_string(&path).expect("readable");
        sources.push((name, text, dir.to_string_lossy().into_owned()));
    }
    let mut out = Vec::new();
    for (name, text, base) in sources {
        let checked = if base.is_empty() {
            hfc::check(&name, &text, &mut hfc::NoFiles)
        } else {
            hfc::check(
                &name,
                &text,
                &mut hfc_tests::DirLoader {
                    base: Path::new(&base).to_path_buf(),
                },
            )
        };
        for report in &checked.models {
            let (Some(model), Some(induced)) = (&report.ir, &report.induced) else {
                continue;
            };
            if let Ok(lowered) = hfc::lower::lower(model, induced) {
                out.push((format!("{name}:{}", report.name), lowered.program));
            }
        }
    }
    out
}

#[test]
fn every_shader_of_every_runnable_model_validates_with_naga() {
    let models = lowered_models();
    let names: Vec<&str> = models.iter().map(|(n, _)| n.as_str()).collect();
    for wanted in ["std/lowrank.hfm:lowrank", "std/completion.hfm:completion"] {
        assert!(names.contains(&wanted), "{wanted} not among {names:?}");
    }
    assert!(models.len() >= 8, "only {names:?} lower");
    for (name, program) in &models {
        for precision in PRECISIONS {
            let shaders = wgsl::shaders(program, precision)
                .unwrap_or_else(|e| panic!("{name} {precision:?}: {e}"));
            assert_eq!(shaders.kernels.len(), program.kernels.len());
            for shader in &shaders.shaders {
                validate_wgsl(&shader.label, &shader.source, precision)
                    .unwrap_or_else(|e| panic!("{name} {precision:?}: {e}\n{}", shader.source));
            }
            // Deterministic: the same text twice.
            assert_eq!(
                emit_wgsl(program, precision).expect("emits"),
                emit_wgsl(program, precision).expect("emits")
            );
        }
    }
}

#[test]
fn wgsl_snapshot_of_the_completion_model() {
    let models = lowered_models();
    let (_, program) = models
        .iter()
        .find(|(n, _)| n == "std/completion.hfm:completion")
        .expect("completion lowers");
    let text = emit_wgsl(program, Precision::F32).expect("emits");
    golden(
        &hfc_tests::crate_dir().join("snapshots/completion.wgsl"),
        &text,
    );
}

/// The shared device, when it can run `precision` (else the test is skipped, or fails
/// under `HFC_REQUIRE_GPU`).
fn device(precision: Precision) -> Option<Arc<GpuContext>> {
    GpuContext::shared_for_tests(precision)
        .map_err(|why| eprintln!("skipped: {why}"))
        .ok()
}

/// Lowers `text`, solves it on the GPU to the low-precision tolerance and certifies the
/// result in f64 on the interpreter, as `hfc run --backend gpu` does.
fn solve_gpu(
    text: &str,
    lambda: f64,
    data: Value,
    tol: f64,
    precision: Precision,
    ctx: Arc<GpuContext>,
) -> (Solution, Certified) {
    let overrides = vec![("lambda".to_string(), lambda)];
    let checked = hfc::check_with("model.hfm", text, &mut hfc::NoFiles, &overrides);
    assert!(!checked.diagnostics.has_errors());
    let report = &checked.models[0];
    let lowered = hfc::lower::lower(
        report.ir.as_ref().expect("ir"),
        report.induced.as_ref().expect("induced"),
    )
    .expect("lowers");
    let program = &lowered.program;
    let (rows, cols, nnz) = match &data {
        Value::Matrix(a) => (a.nrows(), a.ncols(), 0),
        Value::Observed(o) => (o.rows, o.cols, o.len()),
        _ => panic!("data must be a matrix"),
    };
    let bind = |backend: &mut dyn Backend| {
        backend.bind_dim(lowered.data_dims[0], rows);
        backend.bind_dim(lowered.data_dims[1], cols);
        for (k, d) in program.dims.iter().enumerate() {
            if d.kind == DimKind::Observed {
                backend.bind_dim(DimId(k as u32), nnz);
            }
        }
        backend.set(lowered.target.1, data.clone()).expect("set");
    };
    let mut gpu = GpuBackend::new(program, ctx, precision).expect("compiles");
    bind(&mut gpu);
    let epsilon = match precision {
        Precision::F32 => f64::from(f32::EPSILON),
        Precision::F64 => f64::EPSILON,
    };
    let mut opts = options(tol);
    opts.tol = certify::low_precision_tol(tol, epsilon);
    let mut machine = Machine::new(program, &mut gpu);
    let on_gpu = solve::solve(&mut machine, &[rows, cols], &opts, &mut |_| {}).expect("gpu solves");
    let mut cpu = hfc_runtime::Interpreter::new(program);
    bind(&mut cpu);
    let mut machine = Machine::new(program, &mut cpu);
    let certified = certify::certify(
        &mut machine,
        &[rows, cols],
        &on_gpu,
        &options(tol),
        &mut |_| {},
    )
    .expect("certifies");
    (on_gpu, certified)
}

fn relative(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs().max(1e-300)
}

/// The GPU run and its certificate against the interpreter's run of the same problem.
fn check_against_cpu(text: &str, lambda: f64, data: Value, tol: f64, what: &str) {
    let cpu = solve_text(text, &[("lambda", lambda)], data.clone(), &options(tol))
        .expect("cpu solves")
        .solution;
    assert!(
        cpu.converged(),
        "{what}: the CPU run must converge ({:?})",
        cpu.stop
    );
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        let (on_gpu, certified) = solve_gpu(text, lambda, data.clone(), tol, precision, ctx);
        let final_ = &certified.solution;
        eprintln!(
            "{what} {precision:?}: gpu {} iterations, rank {}, objective {:.12e} (f64 at its factors {:.12e}, relative gap {:?}), polish {} iterations; cpu {:.12e} rank {}",
            on_gpu.iterations,
            on_gpu.rank(),
            on_gpu.objective,
            certified.at_start.objective,
            certified.at_start.relative_gap,
            certified.polish_iterations,
            cpu.objective,
            cpu.rank()
        );
        match precision {
            Precision::F32 => {
                // f32 iterates to its own tolerance (1e-3): its point, evaluated in f64, is
                // that close; the certified result is the CPU's optimum.
                assert!(
                    relative(certified.at_start.objective, cpu.objective) <= 1e-3,
                    "{what}: f64 objective at the GPU's factors {} vs CPU {}",
                    certified.at_start.objective,
                    cpu.objective
                );
                assert!(relative(final_.objective, cpu.objective) <= 1e-5);
            }
            Precision::F64 => {
                // f64 on the GPU follows the CPU's run and passes on its own: no polish.
                assert_eq!(on_gpu.rank(), cpu.rank(), "{what}: GPU rank");
                assert!(
                    relative(certified.at_start.objective, cpu.objective) <= 1e-9,
                    "{what}: f64 objective at the GPU's factors {} vs CPU {}",
                    certified.at_start.objective,
                    cpu.objective
                );
                assert_eq!(
                    certified.polish_iterations, 0,
                    "{what}: f64 needed a polish"
                );
                assert!(relative(final_.objective, cpu.objective) <= 1e-9);
            }
        }
        // The certificate: f64 numbers, passing at the user's tolerance, the CPU's rank.
        assert!(
            final_.converged(),
            "{what} {precision:?}: {:?}",
            final_.stop
        );
        assert_eq!(
            final_.rank(),
            cpu.rank(),
            "{what} {precision:?}: final rank"
        );
        let gap = final_.relative_gap.expect("exact polar: a gap");
        assert!(gap <= tol, "{what} {precision:?}: relative gap {gap}");
    }
}

#[test]
fn lowrank_on_the_gpu_reaches_the_cpu_optimum_with_an_f64_certificate() {
    if device(Precision::F32).is_none() {
        return;
    }
    let mut synth = Synth::new(11);
    let mut y = synth.low_rank(60, 40, 3, false) * 10.0;
    synth.add_noise(&mut y, 0.1);
    check_against_cpu(NUCLEAR, 5.0, Value::Matrix(y), 1e-8, "lowrank 60x40");
}

#[test]
fn completion_on_the_gpu_reaches_the_cpu_optimum_with_an_f64_certificate() {
    if device(Precision::F32).is_none() {
        return;
    }
    // A planted rank 2, well above λ: the solution has rank 2.
    let mut synth = Synth::new(12);
    let truth = synth.low_rank(50, 40, 2, false) * 10.0;
    let observed = synth.observe(&truth, 0.5);
    let masked = NUCLEAR.replace("loss squared;", "loss squared on observed(Y);");
    check_against_cpu(
        &masked,
        10.0,
        Value::Observed(observed),
        1e-6,
        "completion 50x40",
    );
}

#[test]
fn cp_tensor_on_the_gpu_reaches_the_cpu_optimum() {
    if device(Precision::F32).is_none() {
        return;
    }
    let text = "model cp {
        param lambda = 0.5;
        data T : [a, b, c];
        factor A : [a, r]; factor B : [b, r]; factor C : [c, r];
        fit T ~ cp(A, B, C);
        loss squared;
        reg lambda * sum(i) norm2(A[:, i]) * norm2(B[:, i]) * norm2(C[:, i]);
    }";
    let mut synth = Synth::new(14);
    let (mut t, _) = synth.cp_tensor(&[12, 10, 8], 2);
    let noise = synth.normal(12, 80);
    t.iter_mut()
        .zip(noise.iter())
        .for_each(|(x, e)| *x += 0.01 * e);
    let tol = 1e-6;
    let cpu = hfc_tests::solve_tensor(hfc_tests::BackendKind::Interp, text, &[], &t, &options(tol))
        .expect("cpu solves")
        .solution;
    assert!(
        cpu.converged() && cpu.rank() == 2,
        "{:?}, rank {}",
        cpu.stop,
        cpu.rank()
    );
    let lowered = hfc_tests::lower_text(text, &[]).expect("lowers");
    let program = &lowered.program;
    let binding = lowered.tensor.as_ref().expect("a tensor model");
    for precision in PRECISIONS {
        let Some(ctx) = device(precision) else {
            continue;
        };
        let mut gpu = GpuBackend::new(program, ctx, precision).expect("compiles");
        binding
            .bind(&mut gpu, &lowered.data_dims, &t)
            .expect("binds");
        let epsilon = match precision {
            Precision::F32 => f64::from(f32::EPSILON),
            Precision::F64 => f64::EPSILON,
        };
        let mut opts = options(tol);
        opts.tol = certify::low_precision_tol(tol, epsilon);
        let mut machine = Machine::new(program, &mut gpu);
        let on_gpu = solve::solve(&mut machine, t.shape(), &opts, &mut |_| {}).expect("solves");
        let mut cpu_backend = hfc_runtime::Interpreter::new(program);
        binding
            .bind(&mut cpu_backend, &lowered.data_dims, &t)
            .expect("binds");
        let mut machine = Machine::new(program, &mut cpu_backend);
        let certified =
            certify::certify(&mut machine, t.shape(), &on_gpu, &options(tol), &mut |_| {})
                .expect("certifies");
        let final_ = &certified.solution;
        let bound = match precision {
            // f64 on the GPU follows the interpreter's run.
            Precision::F64 => 1e-9,
            Precision::F32 => 1e-5,
        };
        assert!(final_.converged(), "{precision:?}: {:?}", final_.stop);
        assert_eq!(final_.rank(), 2, "{precision:?}: rank");
        assert!(
            relative(final_.objective, cpu.objective) <= bound,
            "{precision:?}: objective {} vs CPU {}",
            final_.objective,
            cpu.objective
        );
    }
}
