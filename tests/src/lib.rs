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
