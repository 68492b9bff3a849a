//! `hfc emit`: prints the code generated for a model's kernels (Cranelift IR or WGSL), for
//! inspection and snapshot tests. Code does not depend on the data's extents (kernels take
//! them as arguments), so no data is read.

use hfc::render::Style;

use crate::run_cmd::{lower_model, parse_overrides};
use crate::{EXIT_INTERNAL, EXIT_OK, EXIT_USAGE};

/// What `hfc emit` was asked.
#[derive(clap::Args)]
pub struct EmitArgs {
    /// What to print: `clif` (the CPU back end's Cranelift IR) or `wgsl` (the GPU shaders).
    #[arg(value_parser = ["clif", "wgsl", "kir"])]
    pub target: String,
    /// The model file.
    pub model: String,
    /// Which model of the file (needed when the file has several).
    #[arg(long = "model", value_name = "NAME")]
    pub model_name: Option<String>,
    /// Set a parameter, replacing its declared value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Scalar type of the WGSL shaders: `f32` (portable) or `f64` (needs SHADER_F64).
    #[arg(long, default_value = "f32", value_parser = ["f32", "f64"])]
    pub precision: String,
}

/// Runs `hfc emit`; returns the exit code.
pub fn emit(args: EmitArgs, style: Style) -> u8 {
    let overrides = match parse_overrides(&args.set) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return EXIT_USAGE;
        }
    };
    let selected = match lower_model(
        &args.model,
        args.model_name.as_deref(),
        &overrides,
        true,
        style,
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let program = &selected.lowered.program;
    let text = match args.target.as_str() {
        "kir" => Ok(program.to_string()),
        "clif" => hfc_runtime::cpu::emit_clif(program).map_err(|e| e.to_string()),
        "wgsl" => {
            let precision = hfc_runtime::gpu::Precision::parse(&args.precision).unwrap_or_default();
            hfc_runtime::gpu::emit_wgsl(program, precision).map_err(|e| e.to_string())
        }
        other => {
            eprintln!(
                "error: `hfc emit {other}` is not available in this build (available: clif, wgsl, kir)"
            );
            return EXIT_USAGE;
        }
    };
    match text {
        Ok(text) => {
            print!("{text}");
            EXIT_OK
        }
        Err(e) => {
            // Validated programs always translate: a failure is a bug.
            eprintln!("error: internal compiler error: {e}");
            EXIT_INTERNAL
        }
    }
}
