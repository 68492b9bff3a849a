//! Runs the papers' experiments (`examples/papers/README.md`) and writes, per example, its
//! data (`.npy`, what `hfc run examples/papers/<model>.hfm --data ...` reads), its numbers
//! (`numbers.json`) and its plot (`plot.svg`) into `DIR/<example>/`, each file atomically:
//!
//! ```text
//! cargo run --release -p hfc-tests --bin paper-examples -- [a|b|c|d|e|all]... [--out DIR] [--reduced]
//! ```
//!
//! The default folder is `target/papers/`; `--reduced` runs the test suite's sizes.

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use hfc_tests::papers::{EXAMPLES, Report, Size};
use ndarray_npy::WriteNpyExt;

const USAGE: &str = "usage: paper-examples [a|b|c|d|e|all]... [--out DIR] [--reduced]  (default: all, target/papers)";

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so a
/// reader never sees half a file.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, path)
}

/// Writes an example's arrays, numbers and plot into `dir`.
fn write_report(dir: &Path, report: &Report) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for (name, array) in &report.artifacts.arrays {
        let mut bytes = Vec::new();
        array
            .write_npy(&mut bytes)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        write_atomically(&dir.join(format!("{name}.npy")), &bytes)?;
    }
    for (name, tensor) in &report.artifacts.tensors {
        let mut bytes = Vec::new();
        tensor
            .write_npy(&mut bytes)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        write_atomically(&dir.join(format!("{name}.npy")), &bytes)?;
    }
    let mut json = serde_json::to_string_pretty(&report.json)?;
    json.push('\n');
    write_atomically(&dir.join("numbers.json"), json.as_bytes())?;
    write_atomically(&dir.join("plot.svg"), report.artifacts.svg.as_bytes())
}

fn main() -> ExitCode {
    let mut letters: Vec<String> = Vec::new();
    let mut out = hfc_tests::repo_dir().join("target/papers");
    let mut size = Size::Full;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--out" => match args.next() {
                Some(dir) => out = PathBuf::from(dir),
                None => {
                    eprintln!("error: `--out` needs a folder\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            "--reduced" => size = Size::Reduced,
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "all" => letters.extend(EXAMPLES.iter().map(|e| e.letter.to_string())),
            letter if EXAMPLES.iter().any(|e| e.letter == letter) => {
                letters.push(letter.to_string());
            }
            other => {
                eprintln!("error: unknown argument `{other}`\n{USAGE}");
                return ExitCode::from(2);
            }
        }
    }
    if letters.is_empty() {
        letters.extend(EXAMPLES.iter().map(|e| e.letter.to_string()));
    }
    let mut failed = false;
    for example in EXAMPLES {
        if !letters.iter().any(|l| l == example.letter) {
            continue;
        }
        match (example.run)(size) {
            Ok(report) => {
                let dir = out.join(report.name);
                println!("{}", report.summary);
                if let Err(e) = write_report(&dir, &report) {
                    eprintln!("error: writing {}: {e}", dir.display());
                    failed = true;
                    continue;
                }
                for command in &report.artifacts.rerun {
                    println!(
                        "    rerun: {}",
                        command.replace("DIR", &dir.display().to_string())
                    );
                }
            }
            Err(e) => {
                eprintln!("error: example {}: {e}", example.name);
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
