//! `hfc predict`: applies a fitted network (the factors `hfc run` wrote) to new inputs, by
//! the model's `predict` kernel on the reference interpreter (one forward pass).

use std::path::{Path, PathBuf};

use hfc::render::Style;
use hfc_runtime::backend::Backend;
use hfc_runtime::kir::{Role, Slot};
use hfc_runtime::machine::Machine;
use hfc_runtime::{Interpreter, Value, data};
use ndarray::Array2;
use serde_json::json;

use crate::run_cmd::{data_error, lower_model, npy_bytes, parse_overrides, write_atomic};
use crate::{EXIT_INTERNAL, EXIT_OK, EXIT_USAGE};

/// What `hfc predict` was asked.
#[derive(clap::Args)]
pub struct PredictArgs {
    /// The model file (a network: its map reads input data).
    pub model: String,
    /// The folder with the fitted factors (`<factor>.npy`, as `hfc run` writes them).
    #[arg(long, value_name = "DIR")]
    pub factors: PathBuf,
    /// The new inputs, one row per point (`.npy`, `.npz`, `.csv`).
    #[arg(long, value_name = "FILE")]
    pub input: PathBuf,
    /// Where to write the predictions `[N, c]` (default `DIR/prediction.npy`).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Which model of the file (needed when the file has several).
    #[arg(long = "model", value_name = "NAME")]
    pub model_name: Option<String>,
    /// Set a parameter, replacing its declared value (repeatable).
    #[arg(long = "set", value_name = "NAME=VALUE")]
    pub set: Vec<String>,
    /// Print a JSON summary on standard output.
    #[arg(long)]
    pub json: bool,
    /// Print nothing on success.
    #[arg(long)]
    pub quiet: bool,
}

fn read_matrix(path: &Path, name: &str) -> Result<Array2<f64>, u8> {
    match data::read(path, name, false) {
        Ok(Value::Matrix(a)) => Ok(a),
        Ok(_) => Err(data_error("hfc::data::bad_file", "expected a dense matrix")),
        Err(e) => Err(data_error("hfc::data::bad_file", &e.to_string())),
    }
}

/// Runs `hfc predict`; returns the exit code.
pub fn predict(args: PredictArgs, style: Style) -> u8 {
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
        args.quiet,
        style,
    ) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let model = selected.model();
    let lowered = &selected.lowered;
    let program = &lowered.program;
    let (Some(&(_, _, (_, input_cols))), Some(_)) =
        (lowered.inputs.first(), program.plan.kernel(Role::Predict))
    else {
        eprintln!(
            "error: hfc predict applies a network to new inputs; the map of `{}` has no input \
             data",
            model.name
        );
        return EXIT_USAGE;
    };
    let x = match read_matrix(&args.input, "input") {
        Ok(x) => x,
        Err(code) => return code,
    };
    // Every layer as the solver holds it, [rows, r]; a parallel network's first layer is
    // read as written, [d, h, r] (the same memory as [d·h, r]).
    let mut layers: Vec<(String, Array2<f64>)> = Vec::new();
    for &index in &lowered.factors {
        let factor = &model.factors[index];
        let path = args.factors.join(format!("{}.npy", factor.name));
        let layer = if factor.shape.len() == 3 {
            match data::read_tensor(&path, 3, false) {
                Ok(t) => {
                    let (rows, cols) = (t.shape()[0] * t.shape()[1], t.shape()[2]);
                    match t.into_shape_with_order((rows, cols)) {
                        Ok(m) => m,
                        Err(e) => return data_error("hfc::data::bad_file", &e.to_string()),
                    }
                }
                Err(e) => return data_error("hfc::data::bad_file", &e.to_string()),
            }
        } else {
            match read_matrix(&path, &factor.name) {
                Ok(a) => a,
                Err(code) => return code,
            }
        };
        layers.push((factor.name.clone(), layer));
    }
    let mismatch = |what: String| data_error("hfc::data::shape_mismatch", &what);
    let [(first_name, first), .., (_, last)] = layers.as_slice() else {
        eprintln!("error: internal compiler error: a network without two layers");
        return EXIT_INTERNAL;
    };
    // The first layer's rows: one per input feature, times the hidden units of a
    // subnetwork when each has its own (`[d, h, r]`).
    let per_feature = model.factors[lowered.factors[0]]
        .shape
        .get(1)
        .filter(|_| model.factors[lowered.factors[0]].shape.len() == 3)
        .and_then(|h| h.parse::<usize>().ok())
        .unwrap_or(1);
    if first.nrows() != x.ncols() * per_feature {
        let per = match per_feature {
            1 => "one per input feature".to_string(),
            h => format!("{h} per input feature, one per hidden unit of a subnetwork"),
        };
        return mismatch(format!(
            "{} has {} columns but `{first_name}` has {} rows: {per}",
            args.input.display(),
            x.ncols(),
            first.nrows()
        ));
    }
    for (name, layer) in &layers[1..] {
        if layer.ncols() != first.ncols() {
            return mismatch(format!(
                "`{first_name}` has {} subnetworks (columns) but `{name}` has {}",
                first.ncols(),
                layer.ncols()
            ));
        }
    }
    if layers.len() == 3 && layers[1].1.nrows() != per_feature {
        return mismatch(format!(
            "`{}` has {} rows but each subnetwork has {per_feature} hidden units",
            layers[1].0,
            layers[1].1.nrows()
        ));
    }

    let mut backend = Interpreter::new(program);
    let [n_dim, c_dim] = lowered.data_dims[..] else {
        eprintln!("error: internal compiler error: a network's target is not a matrix");
        return EXIT_INTERNAL;
    };
    backend.bind_dim(n_dim, x.nrows());
    backend.bind_dim(c_dim, last.nrows());
    backend.bind_dim(input_cols, x.ncols());
    let (rows, rank) = (x.nrows(), first.ncols());
    let mut machine = Machine::new(program, &mut backend);
    machine.set_rank(rank);
    let prediction = (|| {
        machine.set(Slot::Features, Value::Matrix(x))?;
        for (k, (_, layer)) in layers.iter().enumerate() {
            machine.set_matrix(Slot::Factor(k as u8), layer.clone())?;
        }
        machine.run(Role::Predict)?;
        machine.matrix(Slot::Prediction)
    })();
    let prediction = match prediction {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: internal compiler error: {e}");
            return EXIT_INTERNAL;
        }
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| args.factors.join("prediction.npy"));
    let bytes = match npy_bytes(&prediction) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot encode the prediction: {e}");
            return EXIT_USAGE;
        }
    };
    if let Err(e) = write_atomic(&out, &bytes) {
        eprintln!("error: cannot write `{}`: {e}", out.display());
        return EXIT_USAGE;
    }
    if args.json {
        println!(
            "{}",
            json!({
                "model": model.name,
                "output": out.display().to_string(),
                "shape": [prediction.nrows(), prediction.ncols()],
                "rank": rank,
            })
        );
    } else if !args.quiet {
        eprintln!(
            "{}: predicted {rows} × {} outputs with {rank} hidden units; written to {}",
            model.name,
            prediction.ncols(),
            out.display()
        );
    }
    EXIT_OK
}
