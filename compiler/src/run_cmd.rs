//! `hfc run`: check, lower, read the data, solve, write the results atomically.
//!
//! Part of the binary (it touches files, the terminal and exit codes); the work is done by
//! the library (`hfc::lower`) and the runtime (`hfc_runtime`).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use serde_json::json;

use hfc::render::{self, Style};
use hfc_runtime::backend::Backend;
use hfc_runtime::gpu::{GpuBackend, GpuContext, Precision};
use hfc_runtime::kir::{DimKind, Program};
use hfc_runtime::machine::Machine;
use hfc_runtime::solve::{self, Options, Record, Stop};
use hfc_runtime::{Interpreter, Value, certify, data, report, valid};

use crate::{EXIT_INTERNAL, EXIT_MODEL_ERRORS, EXIT_OK, EXIT_USAGE};

/// Stopped at the iteration or rank limit; the results are written.
const EXIT_LIMIT: u8 = 3;
/// Interrupted (Ctrl-C); the current state is written with `"converged": false`.
const EXIT_INTERRUPTED: u8 = 130;

/// What `hfc run` was asked.
#[derive(clap::Args)]
pub struct RunArgs {
    /// The model file.
    pub model: String,
    /// Which model of the file (needed when the file has several).
    #[arg(long = "model", value_name = "NAME")]
    pub model_name: Option<String>,
    /// Set a parameter, replacing its declared value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Read data NAME from PATH instead of its `load("...")` (repeatable).
    #[arg(long = "data", value_name = "NAME=PATH")]
    pub data: Vec<String>,
    /// Output folder (default: the model's name, next to the model file).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Back end executing the kernels.
    #[arg(long, default_value = "interp", value_parser = ["interp", "jit", "gpu"])]
    pub backend: String,
    /// Scalar type of the GPU shaders: `f32` (every adapter) or `f64` (adapters with
    /// SHADER_F64). The certificate is recomputed in f64 on the CPU either way.
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    pub precision: String,
    /// Seed (replaces `solve { seed = ...; }`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Iterations of local descent, in all (replaces `solve { max_iter = ...; }`).
    #[arg(long = "max-iter", value_name = "N")]
    pub max_iter: Option<u64>,
    /// Relative tolerance (replaces `solve { tol = ...; }`).
    #[arg(long, value_name = "X")]
    pub tol: Option<f64>,
    /// Print nothing but errors.
    #[arg(long)]
    pub quiet: bool,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
}

fn parse_pairs(items: &[String], what: &str) -> Result<Vec<(String, String)>, String> {
    items
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .filter(|(k, v)| !k.is_empty() && !v.is_empty())
                .ok_or_else(|| format!("`--{what} {item}`: expected NAME=VALUE"))
        })
        .collect()
}

/// Writes a file atomically: a temporary file in the same folder, then a rename, so that an
/// interrupted run never leaves a half-written result.
fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn npy_bytes(a: &ndarray::Array2<f64>) -> Result<Vec<u8>, String> {
    use ndarray_npy::WriteNpyExt;
    let mut out = Vec::new();
    a.write_npy(&mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

fn data_error(code: &str, message: &str) -> u8 {
    eprintln!("error[{code}]: {message}");
    EXIT_USAGE
}

/// A model checked, chosen and lowered to a validated kernel program.
pub(crate) struct LoweredModel {
    pub checked: hfc::Checked,
    pub index: usize,
    pub lowered: hfc::lower::Lowered,
}

impl LoweredModel {
    pub fn model(&self) -> &hfc::ir::Model {
        // `lower_model` only builds a LoweredModel for a report with an IR.
        self.checked.models[self.index]
            .ir
            .as_ref()
            .expect("a lowered model has its IR")
    }
}

/// Checks a model file, picks the model (`--model NAME` or the only one), checks `--set`
/// names against its parameters, lowers it and validates the kernel program. Diagnostics are
/// shown (all of them unless `quiet`); `Err(exit code)` after reporting a failure.
pub(crate) fn lower_model(
    path: &str,
    model_name: Option<&str>,
    overrides: &[(String, f64)],
    quiet: bool,
    style: Style,
) -> Result<LoweredModel, u8> {
    let checked = crate::load_with(path, overrides)?;
    let errors = checked.diagnostics.error_count();
    if !quiet || errors > 0 {
        eprint!(
            "{}",
            render::render_all(&checked.db, &checked.diagnostics, style)
        );
    }
    if errors > 0 {
        return Err(EXIT_MODEL_ERRORS);
    }
    let index = match model_name {
        Some(name) => checked.models.iter().position(|m| m.name == *name),
        None if checked.models.len() == 1 => Some(0),
        None => {
            eprintln!(
                "error: `{path}` has {} models; choose one with --model NAME",
                checked.models.len()
            );
            return Err(EXIT_USAGE);
        }
    };
    let Some(index) = index else {
        eprintln!("error: `{path}` has no such model");
        return Err(EXIT_USAGE);
    };
    let report = &checked.models[index];
    let (Some(model), Some(induced)) = (&report.ir, &report.induced) else {
        eprintln!("error: `{path}` has no model to run");
        return Err(EXIT_MODEL_ERRORS);
    };
    for (name, _) in overrides {
        if !model.params.iter().any(|(p, _)| p == name) {
            let names: Vec<&str> = model.params.iter().map(|(p, _)| p.as_str()).collect();
            eprintln!(
                "error: `--set {name}`: model `{}` has no parameter `{name}` (its parameters: {})",
                model.name,
                if names.is_empty() {
                    "none".into()
                } else {
                    names.join(", ")
                }
            );
            return Err(EXIT_USAGE);
        }
    }
    let lowered = match hfc::lower::lower(model, induced) {
        Ok(l) => l,
        Err(diagnostic) => {
            let mut all = hfc::Diagnostics::new();
            all.push(*diagnostic);
            eprint!("{}", render::render_all(&checked.db, &all, style));
            return Err(EXIT_MODEL_ERRORS);
        }
    };
    if let Err(e) = valid::validate(&lowered.program) {
        eprintln!("error: internal compiler error: {e}");
        return Err(EXIT_INTERNAL);
    }
    Ok(LoweredModel {
        checked,
        index,
        lowered,
    })
}

/// Opens the back end `--backend` names for a validated program.
fn open_backend(args: &RunArgs, program: &Program) -> Result<Box<dyn Backend>, String> {
    match args.backend.as_str() {
        "interp" => Ok(Box::new(Interpreter::new(program))),
        "gpu" => {
            let precision = Precision::parse(&args.precision).unwrap_or_default();
            let context = GpuContext::open().map_err(|e| e.to_string())?;
            let backend =
                GpuBackend::new(program, context, precision).map_err(|e| e.to_string())?;
            Ok(Box::new(backend))
        }
        other => Err(format!(
            "backend `{other}` is not available in this build (available: interp, gpu)"
        )),
    }
}

/// Parses `--set NAME=VALUE` into parameter overrides.
pub(crate) fn parse_overrides(items: &[String]) -> Result<Vec<(String, f64)>, String> {
    let mut overrides = Vec::new();
    for (name, value) in parse_pairs(items, "set")? {
        match value.parse::<f64>() {
            Ok(v) if v.is_finite() => overrides.push((name, v)),
            _ => {
                return Err(format!(
                    "`--set {name}={value}`: the value must be a finite number"
                ));
            }
        }
    }
    Ok(overrides)
}

/// Runs `hfc run`; returns the exit code.
pub fn run(args: RunArgs, style: Style) -> u8 {
    let started = Instant::now();
    let overrides = match parse_overrides(&args.set) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let data_overrides = match parse_pairs(&args.data, "data") {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let selected = match lower_model(
        &args.model,
        args.model_name.as_deref(),
        &overrides,
        args.quiet,
        style,
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let model = selected.model();
    let lowered = &selected.lowered;
    let program = &lowered.program;
    let mut backend = match open_backend(&args, program) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };

    // The data: `--data NAME=PATH`, else the declaration's `load("…")`, relative to the model.
    let (target_index, target_buf) = lowered.target;
    let target = &model.data[target_index];
    let model_dir = Path::new(&args.model)
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = match data_overrides.iter().find(|(n, _)| *n == target.name) {
        Some((_, p)) => PathBuf::from(p),
        None => match &target.source {
            Some((p, _)) => model_dir.join(p),
            None => {
                eprintln!(
                    "error: data `{}` has no file; give one with `--data {}=PATH`",
                    target.name, target.name
                );
                return EXIT_USAGE;
            }
        },
    };
    for (name, _) in &data_overrides {
        if !model.data.iter().any(|d| d.name == *name) {
            eprintln!(
                "error: `--data {name}`: model `{}` has no data `{name}`",
                model.name
            );
            return EXIT_USAGE;
        }
    }
    let value = match data::read(&path, &target.name, lowered.observed) {
        Ok(v) => v,
        Err(e) => return data_error("hfc::data::bad_file", &e.to_string()),
    };
    let (rows, cols, nnz) = match &value {
        Value::Matrix(a) => (a.nrows(), a.ncols(), None),
        Value::Observed(o) => (o.rows, o.cols, Some(o.len())),
        _ => return data_error("hfc::data::bad_file", "expected a matrix"),
    };
    // Declared sizes that are numbers must match the file.
    for (axis, (declared, actual)) in target.shape.iter().zip([rows, cols]).enumerate() {
        if let Ok(n) = declared.parse::<usize>()
            && n != actual
        {
            return data_error(
                "hfc::data::shape_mismatch",
                &format!(
                    "{}: axis {} has {actual} entries, but `{}` is declared [{}]",
                    path.display(),
                    axis + 1,
                    target.name,
                    target.shape.join(", ")
                ),
            );
        }
    }

    let (m_dim, n_dim) = lowered.data_dims;
    backend.bind_dim(m_dim, rows);
    backend.bind_dim(n_dim, cols);
    for (k, dim) in program.dims.iter().enumerate() {
        if dim.kind == DimKind::Observed {
            backend.bind_dim(hfc_runtime::kir::DimId(k as u32), nnz.unwrap_or(0));
        }
    }
    // The GPU iterates in low precision; its certificate is recomputed from this copy.
    let gpu = args.backend == "gpu";
    let data_copy = gpu.then(|| value.clone());
    if let Err(e) = backend.set(target_buf, value) {
        eprintln!("error: internal compiler error: {e}");
        return EXIT_INTERNAL;
    }

    let interrupt = Arc::new(AtomicBool::new(false));
    {
        let flag = Arc::clone(&interrupt);
        // A second Ctrl-C while the results are written is ignored: the run stops once.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    }
    let options = Options {
        max_iter: args.max_iter.unwrap_or(model.solve.max_iter),
        tol: args.tol.unwrap_or(model.solve.tol),
        max_rank: model.solve.max_rank.map(|r| r as usize),
        init_rank: model.solve.init_rank as usize,
        seed: args.seed.unwrap_or(model.solve.seed),
        interrupt: Some(Arc::clone(&interrupt)),
    };
    if !(options.tol > 0.0 && options.tol.is_finite()) {
        eprintln!("error: `--tol` must be a positive number");
        return EXIT_USAGE;
    }
    let show_progress = !args.quiet && !args.json && std::io::stderr().is_terminal();
    let lambda = program.plan.lambda;
    let mut progress = |record: &Record| {
        if show_progress {
            let polar = record
                .polar_value
                .map(|p| format!("  polar/λ {:.6}", if lambda > 0.0 { p / lambda } else { p }))
                .unwrap_or_default();
            let gap = record
                .gap
                .map(|g| format!("  gap {g:.3e}"))
                .unwrap_or_default();
            eprint!(
                "\r\x1b[2Kiter {:>6}  rank {:>4}  objective {:.10e}{polar}{gap}",
                record.iteration, record.rank, record.objective
            );
        }
    };
    // A low-precision back end runs to a tolerance it can resolve (see `certify`).
    let epsilon = match (gpu, args.precision.as_str()) {
        (true, "f32") => f64::from(f32::EPSILON),
        _ => f64::EPSILON,
    };
    let backend_options = Options {
        tol: certify::low_precision_tol(options.tol, epsilon),
        ..options.clone()
    };
    let mut machine = Machine::new(program, backend.as_mut());
    let solved = solve::solve(&mut machine, rows, cols, &backend_options, &mut progress);
    let (backend_name, backend_info) = (machine.backend_name(), machine.backend_info());
    let solution = match solved {
        Ok(s) => s,
        Err(e) => {
            if show_progress {
                eprint!("\r\x1b[2K");
            }
            eprintln!("error: the solver failed: {e}");
            return EXIT_USAGE;
        }
    };
    // GPU: objective, polar value and gap recomputed in f64 by the interpreter at the GPU's
    // factors, and a polish in f64 from them when those do not pass at the user's tolerance.
    let mut gpu_report = serde_json::Value::Null;
    let solution = match data_copy {
        None => solution,
        Some(data_value) => {
            let mut cpu = Interpreter::new(program);
            cpu.bind_dim(m_dim, rows);
            cpu.bind_dim(n_dim, cols);
            for (k, dim) in program.dims.iter().enumerate() {
                if dim.kind == DimKind::Observed {
                    cpu.bind_dim(hfc_runtime::kir::DimId(k as u32), nnz.unwrap_or(0));
                }
            }
            if let Err(e) = cpu.set(target_buf, data_value) {
                eprintln!("error: internal compiler error: {e}");
                return EXIT_INTERNAL;
            }
            let mut cpu_machine = Machine::new(program, &mut cpu);
            let certified = match certify::certify(
                &mut cpu_machine,
                rows,
                cols,
                &solution,
                &options,
                &mut progress,
            ) {
                Ok(c) => c,
                Err(e) => {
                    if show_progress {
                        eprint!("\r\x1b[2K");
                    }
                    eprintln!("error: the f64 certificate failed: {e}");
                    return EXIT_USAGE;
                }
            };
            gpu_report = json!({
                "tol": backend_options.tol,
                "iterations": solution.iterations,
                "rank": solution.rank(),
                "objective": solution.objective,
                "stop": solution.stop.as_str(),
                "f64_at_gpu_factors": certified.at_start,
                "polish_iterations": certified.polish_iterations,
            });
            certified.solution
        }
    };
    if show_progress {
        eprint!("\r\x1b[2K");
    }

    // Outputs.
    let out_dir = args
        .out
        .clone()
        .unwrap_or_else(|| model_dir.join(&model.name));
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!(
            "error: cannot create the output folder `{}`: {e}",
            out_dir.display()
        );
        return EXIT_USAGE;
    }
    let (left, right) = lowered.factors;
    let factor_files = [
        (&model.factors[left].name, &solution.left),
        (&model.factors[right].name, &solution.right),
    ];
    let certificate = match (solution.converged(), program.plan.polar_exact) {
        (true, true) => "exact",
        (true, false) => "heuristic",
        (false, _) => "none",
    };
    let report = json!({
        "model": model.name,
        "objective": solution.objective,
        "loss": solution.loss,
        "regularizer": solution.regularizer,
        "lambda": solution.lambda,
        "rank": solution.rank(),
        "polar_value": solution.polar_value,
        "gap": solution.gap,
        "relative_gap": solution.relative_gap,
        "certificate": certificate,
        "iterations": solution.iterations,
        "outer_iterations": solution.outer_iterations,
        "seconds": started.elapsed().as_secs_f64(),
        "backend": backend_name,
        "backend_info": backend_info,
        "gpu": gpu_report,
        "converged": solution.converged(),
        "stop": solution.stop.as_str(),
        "lambda_max": solution.lambda_max,
        "polar_solver": program.plan.polar.name(),
        "polar_exact": program.plan.polar_exact,
        "polar_residual": solution.polar_residual,
        "seconds_descent": solution.seconds_descent,
        "seconds_polar": solution.seconds_polar,
        "seed": options.seed,
        "tol": options.tol,
        "data": {
            "name": target.name,
            "file": path.display().to_string(),
            "shape": [rows, cols],
            "observed_entries": nnz,
        },
        "factors": factor_files.iter().map(|(name, a)| json!({
            "name": name,
            "file": format!("{name}.npy"),
            "shape": [a.nrows(), a.ncols()],
        })).collect::<Vec<_>>(),
        "history": solution.history,
    });
    let text = serde_json::to_string_pretty(&report).unwrap_or_else(|_| report.to_string());
    let mut writes: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for (name, a) in factor_files {
        match npy_bytes(a) {
            Ok(bytes) => writes.push((out_dir.join(format!("{name}.npy")), bytes)),
            Err(e) => {
                eprintln!("error: cannot encode `{name}`: {e}");
                return EXIT_USAGE;
            }
        }
    }
    writes.push((
        out_dir.join("convergence.svg"),
        report::convergence_svg(&model.name, &solution.history).into_bytes(),
    ));
    // The report last: its presence means the run's outputs are complete.
    writes.push((
        out_dir.join("report.json"),
        format!("{text}\n").into_bytes(),
    ));
    for (file, bytes) in &writes {
        if let Err(e) = write_atomic(file, bytes) {
            eprintln!("error: cannot write `{}`: {e}", file.display());
            return EXIT_USAGE;
        }
    }
    if args.json {
        println!("{text}");
    }
    if !args.quiet {
        let gap = match solution.relative_gap {
            Some(g) => format!(", relative gap {g:.2e}"),
            None => String::new(),
        };
        let verdict = match solution.stop {
            Stop::Optimal if certificate == "exact" => "certified global optimum".to_string(),
            Stop::Optimal => {
                "polar test passed (heuristic polar: a necessary condition only)".to_string()
            }
            Stop::IterationLimit => "stopped at the iteration limit".to_string(),
            Stop::RankLimit => "stopped at the rank limit (`solve { rank <= ... }`)".to_string(),
            Stop::Interrupted => "interrupted".to_string(),
            Stop::NoProgress => {
                "stopped: the polar maximizer does not decrease the objective".to_string()
            }
        };
        eprintln!(
            "{}: {verdict}\n  objective {:.12e} (loss {:.6e} + regularizer {:.6e}), rank {}, polar {:.6e} vs λ = {}{gap}\n  {} iterations, {} outer, {:.2} s; results in {}",
            model.name,
            solution.objective,
            solution.loss,
            solution.regularizer,
            solution.rank(),
            solution.polar_value,
            solution.lambda,
            solution.iterations,
            solution.outer_iterations,
            started.elapsed().as_secs_f64(),
            out_dir.display()
        );
    }
    match solution.stop {
        Stop::Optimal => EXIT_OK,
        Stop::Interrupted => EXIT_INTERRUPTED,
        Stop::IterationLimit | Stop::RankLimit | Stop::NoProgress => EXIT_LIMIT,
    }
}
