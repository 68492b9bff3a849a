//! What the test targets of `hfc-tests` share.
//!
//! - [`DirLoader`]: imports read from a test folder, with paths relative to it.
//! - [`annotations`]: the `//~ ERROR code` / `//~ WARN code` expectations of a UI test.
//! - [`golden`]: compare a text with a golden file; `UPDATE_EXPECT=1` rewrites the file.

use std::path::{Path, PathBuf};

use hfc::FileLoader;

/// The folder of this crate (`tests/`).
pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository's root.
pub fn repo_dir() -> PathBuf {
    crate_dir()
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(crate_dir)
}

/// Reads imports relative to a base folder (file names in diagnostics stay relative).
pub struct DirLoader {
    /// The folder import paths are relative to.
    pub base: PathBuf,
}

impl FileLoader for DirLoader {
    fn load(&mut self, path: &str) -> Result<String, String> {
        std::fs::read_to_string(self.base.join(path)).map_err(|_| "no such file".to_string())
    }
}

/// One expected diagnostic: the code and severity due on a line (1-based).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Annotation {
    /// The line the diagnostic's primary span must start on.
    pub line: u32,
    /// `"error"` or `"warning"`.
    pub severity: String,
    /// The code.
    pub code: String,
}

/// Reads the annotations of a test file. An annotation is a line `//~ ERROR code` or
/// `//~ WARN code`; it applies to the next line that is not an annotation.
pub fn annotations(text: &str) -> Result<Vec<Annotation>, String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (k, line) in lines.iter().enumerate() {
        let Some(rest) = line.trim_start().strip_prefix("//~") else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let severity = match words.next() {
            Some("ERROR") => "error",
            Some("WARN") => "warning",
            other => {
                return Err(format!(
                    "line {}: expected ERROR or WARN, found {other:?}",
                    k + 1
                ));
            }
        };
        let code = words
            .next()
            .ok_or_else(|| format!("line {}: annotation without a code", k + 1))?;
        let target = lines[k + 1..]
            .iter()
            .position(|l| !l.trim_start().starts_with("//~"))
            .map(|offset| k + 1 + offset)
            .ok_or_else(|| format!("line {}: annotation with no line after it", k + 1))?;
        out.push(Annotation {
            line: target as u32 + 1,
            severity: severity.to_string(),
            code: code.to_string(),
        });
    }
    Ok(out)
}

/// Compares `actual` with the golden file at `path`; with `UPDATE_EXPECT=1`, rewrites it.
pub fn golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_EXPECT").is_some()
        && let Some(dir) = path.parent()
    {
        let _ = std::fs::create_dir_all(dir);
    }
    expect_test::ExpectFile {
        path: path.to_path_buf(),
        position: file!(),
    }
    .assert_eq(actual);
}

/// A model solved in process: the lowered program and the solver's result.
pub struct Solved {
    /// The lowered program (its plan says which polar solver ran and whether it is exact).
    pub lowered: hfc::lower::Lowered,
    /// The solver's result.
    pub solution: hfc_runtime::solve::Solution,
}

/// Checks `text` (a model file whose first model is solved) with parameter overrides,
/// lowers it, binds `data` to its fitted data and runs the solver with `options`.
pub fn solve_text(
    text: &str,
    overrides: &[(&str, f64)],
    data: hfc_runtime::Value,
    options: &hfc_runtime::solve::Options,
) -> Result<Solved, String> {
    use hfc_runtime::Backend;
    let overrides: Vec<(String, f64)> =
        overrides.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let checked = hfc::check_with("model.hfm", text, &mut hfc::NoFiles, &overrides);
    if checked.diagnostics.has_errors() {
        return Err(format!("{:?}", checked.diagnostics));
    }
    let report = checked.models.first().ok_or("no model")?;
    let (Some(model), Some(induced)) = (&report.ir, &report.induced) else {
        return Err("no IR".into());
    };
    let lowered = hfc::lower::lower(model, induced).map_err(|d| d.message().to_string())?;
    hfc_runtime::valid::validate(&lowered.program).map_err(|e| e.to_string())?;
    let program = lowered.program.clone();
    let mut backend = hfc_runtime::Interpreter::new(&program);
    let (rows, cols) = match &data {
        hfc_runtime::Value::Matrix(a) => (a.nrows(), a.ncols()),
        hfc_runtime::Value::Observed(o) => {
            for (k, d) in program.dims.iter().enumerate() {
                if d.kind == hfc_runtime::kir::DimKind::Observed {
                    backend.bind_dim(hfc_runtime::kir::DimId(k as u32), o.len());
                }
            }
            (o.rows, o.cols)
        }
        _ => return Err("data must be a matrix".into()),
    };
    backend.bind_dim(lowered.data_dims.0, rows);
    backend.bind_dim(lowered.data_dims.1, cols);
    backend
        .set(lowered.target.1, data)
        .map_err(|e| e.to_string())?;
    let mut machine = hfc_runtime::machine::Machine::new(&program, &mut backend);
    let solution = hfc_runtime::solve::solve(&mut machine, rows, cols, options, &mut |_| {})
        .map_err(|e| e.to_string())?;
    Ok(Solved { lowered, solution })
}

/// Solver options with a tolerance and otherwise the catalog's defaults.
pub fn options(tol: f64) -> hfc_runtime::solve::Options {
    hfc_runtime::solve::Options {
        max_iter: 20_000,
        tol,
        max_rank: None,
        init_rank: 0,
        seed: 0,
        interrupt: None,
    }
}

/// Nuclear-norm low-rank approximation with `lambda` a parameter and the data given at run
/// time: the model the solver tests and benchmarks share.
pub const NUCLEAR: &str = "model m {
    param lambda = 1.0;
    data Y : [m, n];
    factor U : [m, r]; factor V : [n, r];
    fit Y ~ U * V';
    loss squared;
    reg lambda * sum(i) norm2(U[:, i]) * norm2(V[:, i]);
}";
