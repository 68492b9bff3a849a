//! `hfc-stdlib`: the standard library of `.hfm` models and norms, compiled into the binary.
//!
//! Models import these files as `import "std/<name>";`. Every file here is checked by the
//! test suite (it must check clean, and its `hfc explain` output is snapshot-tested).

#![deny(missing_docs)]

/// Every standard-library file: its name (without the `std/` prefix) and its text.
pub static FILES: &[(&str, &str)] = &[];

/// The text of the standard-library file `name` (e.g. `"norms.hfm"`).
pub fn file(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}
