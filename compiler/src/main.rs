//! The `hfc` command line: the only place that touches files, the terminal and exit codes.
//!
//! Contract (DESIGN section 8; scripts rely on it, so it is only ever extended):
//! - `hfc check MODEL.hfm [--json] [--deny-warnings]`: exit 0 without errors (warnings allowed
//!   unless `--deny-warnings`), 1 with errors, 2 on usage or IO errors.
//! - `hfc explain MODEL.hfm [--json] [--model NAME]`: degrees, induced regularizer, polar
//!   problem, polar solver and certificate; exit codes as `check`.
//! - `hfc atoms [--json]`: the catalog, generated from the compiler's own tables.
//! - `hfc run MODEL.hfm [--set NAME=VALUE]... [--data NAME=PATH]... [--out DIR]
//!   [--backend interp] [--seed N] [--max-iter N] [--tol X] [--quiet] [--json]`: solves the
//!   model; writes DIR/report.json, one DIR/<factor>.npy per factor and DIR/convergence.svg,
//!   each atomically. Exit 0 converged, 3 stopped at a limit (results written), 1 model
//!   errors, 2 usage/IO/data errors, 130 interrupted (results written, `"converged": false`).
//!
//! An internal compiler error (a bug, never bad input) prints a short message naming the
//! file and exits with 101.

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod emit_cmd;
mod predict_cmd;
mod run_cmd;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use hfc::render::{self, Style};
use hfc::{Checked, FileLoader};

#[derive(Parser)]
#[command(
    name = "hfc",
    version,
    about = "Check, explain and solve positively homogeneous factorization models (.hfm)",
    long_about = "hfc checks that a model's regularizer has the same degree of positive \
                  homogeneity as its factorization map, derives the induced convex regularizer \
                  and its polar problem, and solves the model to a certified global optimum."
)]
struct Cli {
    /// When to colour diagnostics.
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum Color {
    /// Colour when standard error is a terminal and NO_COLOR is unset.
    Auto,
    Always,
    Never,
}

#[derive(Subcommand)]
enum Command {
    /// Parse a model, infer shapes and verify the degrees of the map and the regularizer.
    Check {
        /// The model file.
        model: String,
        /// Print the diagnostics and degrees as JSON on standard output.
        #[arg(long)]
        json: bool,
        /// Treat warnings as errors (exit 1).
        #[arg(long)]
        deny_warnings: bool,
    },
    /// Derive the induced convex regularizer, its polar problem and the certificate.
    Explain {
        /// The model file.
        model: String,
        /// Print the explanation as JSON on standard output.
        #[arg(long)]
        json: bool,
        /// Which model of the file (needed with --json when the file has several).
        #[arg(long = "model", value_name = "NAME")]
        model_name: Option<String>,
    },
    /// Solve a model by the rank-growing algorithm and certify the result.
    Run(run_cmd::RunArgs),
    /// Print the code generated for a model: Cranelift IR (`clif`) or WGSL shaders (`wgsl`).
    Emit(emit_cmd::EmitArgs),
    /// Apply a fitted network (the factors `hfc run` wrote) to new inputs.
    Predict(predict_cmd::PredictArgs),
    /// List the atoms, losses, options and closed forms hfc knows.
    Atoms {
        /// Print the catalog as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Reads imported files from the file system.
struct FsLoader;

impl FileLoader for FsLoader {
    fn load(&mut self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(path).map_err(|e| io_reason(&e))
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        std::io::ErrorKind::InvalidData => "not UTF-8 text".to_string(),
        _ => e.to_string(),
    }
}

pub(crate) const EXIT_OK: u8 = 0;
pub(crate) const EXIT_MODEL_ERRORS: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;
pub(crate) const EXIT_INTERNAL: u8 = 101;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let file = match &cli.command {
        Command::Check { model, .. }
        | Command::Explain { model, .. }
        | Command::Run(run_cmd::RunArgs { model, .. })
        | Command::Emit(emit_cmd::EmitArgs { model, .. })
        | Command::Predict(predict_cmd::PredictArgs { model, .. }) => Some(model.clone()),
        Command::Atoms { .. } => None,
    };
    // A bug must not look like a crash on the user's input: no raw trace, the file named.
    std::panic::set_hook(Box::new(move |info| {
        let what = file.as_deref().unwrap_or("the catalog");
        eprintln!("error: internal compiler error while processing `{what}`: {info}");
        eprintln!("note: this is a bug in hfc, not in the model; please report it with the file");
    }));
    match std::panic::catch_unwind(|| run(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(_) => ExitCode::from(EXIT_INTERNAL),
    }
}

fn run(cli: Cli) -> u8 {
    let style = Style {
        color: match cli.color {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => {
                std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
            }
        },
        width: std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .filter(|&w: &usize| w >= 40)
            .unwrap_or(80),
    };
    match cli.command {
        Command::Check {
            model,
            json,
            deny_warnings,
        } => check(&model, json, deny_warnings, style),
        Command::Explain {
            model,
            json,
            model_name,
        } => explain(&model, json, model_name.as_deref(), style),
        Command::Run(args) => run_cmd::run(args, style),
        Command::Emit(args) => emit_cmd::emit(args, style),
        Command::Predict(args) => predict_cmd::predict(args, style),
        Command::Atoms { json } => {
            if json {
                println!("{}", pretty(&hfc::reference::json()));
            } else {
                print!("{}", hfc::reference::text());
            }
            EXIT_OK
        }
    }
}

/// Reads and checks a model file; `Err(exit code)` after reporting an IO error. A path
/// `std/NAME` that is not on disk names a file of the built-in standard library.
fn load(path: &str) -> Result<Checked, u8> {
    load_with(path, &[])
}

/// [`load`] with parameter values replacing the declared defaults.
pub(crate) fn load_with(path: &str, overrides: &[(String, f64)]) -> Result<Checked, u8> {
    let builtin = path
        .strip_prefix(hfc::source::STD_PREFIX)
        .and_then(hfc_stdlib::file)
        .filter(|_| !Path::new(path).exists());
    if let Some(text) = builtin {
        return Ok(hfc::check_with(path, text, &mut FsLoader, overrides));
    }
    let text = match std::fs::read_to_string(Path::new(path)) {
        Ok(text) => text,
        Err(e) => {
            eprintln!("error: cannot read `{path}`: {}", io_reason(&e));
            return Err(EXIT_USAGE);
        }
    };
    if u32::try_from(text.len()).is_err() {
        eprintln!("error: `{path}` is larger than 4 GiB");
        return Err(EXIT_USAGE);
    }
    Ok(hfc::check_with(path, &text, &mut FsLoader, overrides))
}

fn diagnostics_json(checked: &Checked) -> Vec<serde_json::Value> {
    checked
        .diagnostics
        .iter()
        .map(|d| render::to_json(&checked.db, d))
        .collect()
}

fn pretty(value: &serde_json::Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
}

fn check(path: &str, json: bool, deny_warnings: bool, style: Style) -> u8 {
    let checked = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let errors = checked.diagnostics.error_count();
    let warnings = checked.diagnostics.len() - errors;
    if json {
        let first = checked.models.first();
        let out = json!({
            "diagnostics": diagnostics_json(&checked),
            "degree": {
                "map": first.and_then(|m| m.map_degree),
                "regularizer": first.and_then(|m| m.reg_degree),
            },
            "models": checked.models.iter().map(|m| json!({
                "name": m.name,
                "degree": {"map": m.map_degree, "regularizer": m.reg_degree},
            })).collect::<Vec<_>>(),
        });
        println!("{}", pretty(&out));
    } else {
        eprint!(
            "{}",
            render::render_all(&checked.db, &checked.diagnostics, style)
        );
        if errors == 0 {
            let models = checked.models.len();
            eprintln!(
                "checked `{path}`: {models} model{}{}",
                if models == 1 { "" } else { "s" },
                if warnings == 0 { ", no problems" } else { "" }
            );
        }
    }
    exit_code(errors, warnings, deny_warnings)
}

fn exit_code(errors: usize, warnings: usize, deny_warnings: bool) -> u8 {
    if errors > 0 || (deny_warnings && warnings > 0) {
        EXIT_MODEL_ERRORS
    } else {
        EXIT_OK
    }
}

fn explain(path: &str, json: bool, model_name: Option<&str>, style: Style) -> u8 {
    let checked = match load(path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let errors = checked.diagnostics.error_count();
    if json {
        if errors > 0 {
            println!(
                "{}",
                pretty(&json!({ "diagnostics": diagnostics_json(&checked) }))
            );
            return EXIT_MODEL_ERRORS;
        }
    } else {
        eprint!(
            "{}",
            render::render_all(&checked.db, &checked.diagnostics, style)
        );
        if errors > 0 {
            return EXIT_MODEL_ERRORS;
        }
    }
    let selected: Vec<&hfc::ModelReport> = match model_name {
        Some(name) => {
            let found: Vec<_> = checked.models.iter().filter(|m| m.name == name).collect();
            if found.is_empty() {
                let names: Vec<&str> = checked.models.iter().map(|m| m.name.as_str()).collect();
                eprintln!(
                    "error: `{path}` has no model `{name}` (its models: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                );
                return EXIT_USAGE;
            }
            found
        }
        None => checked.models.iter().collect(),
    };
    if selected.is_empty() {
        eprintln!("error: `{path}` has no model to explain");
        return EXIT_USAGE;
    }
    if json {
        if selected.len() > 1 {
            eprintln!("error: `{path}` has several models; choose one with --model NAME");
            return EXIT_USAGE;
        }
        println!("{}", pretty(&hfc::explain::to_json(selected[0])));
    } else {
        let texts: Vec<String> = selected
            .iter()
            .filter_map(|m| hfc::explain::to_text(m))
            .collect();
        print!("{}", texts.join("\n"));
    }
    EXIT_OK
}
