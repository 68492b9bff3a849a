//! The source database: the root file, every file it imports, their ASTs and syntax errors.
//!
//! The library does no IO: files other than the root come through a [`FileLoader`] (the CLI
//! reads the file system; tests read a map), except `std/...` paths, which are the standard
//! library compiled into the binary (`hfc-stdlib`).

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use hfc_grammar::{FileId, SourceFile, SyntaxError, ast};

use crate::diagnostics::{self, Diagnostics};

/// Reads imported files.
pub trait FileLoader {
    /// The text of the file at `path` (already joined with the importing file's folder), or
    /// why it cannot be read.
    fn load(&mut self, path: &str) -> Result<String, String>;
}

/// A loader that finds nothing: for programs with no imports besides `std/`.
pub struct NoFiles;

impl FileLoader for NoFiles {
    fn load(&mut self, _path: &str) -> Result<String, String> {
        Err("imports are not available here".to_string())
    }
}

/// A file with its syntax tree.
#[derive(Debug)]
pub struct Parsed {
    /// The text.
    pub source: SourceFile,
    /// The syntax tree.
    pub ast: ast::File,
    /// Its syntax errors (also reported as diagnostics).
    pub syntax_errors: Vec<SyntaxError>,
    /// For each `import` item of the file, in order: the file it loaded, if any.
    pub imports: Vec<Option<FileId>>,
}

/// Every file of a program.
#[derive(Debug)]
pub struct SourceDb {
    files: Vec<Parsed>,
}

/// The prefix of imports that name the standard library.
pub const STD_PREFIX: &str = "std/";

impl SourceDb {
    /// Parses `root` and, transitively, what it imports. Syntax errors and imports that
    /// cannot be read become diagnostics.
    pub fn load(
        root_name: &str,
        root_text: &str,
        loader: &mut dyn FileLoader,
        diags: &mut Diagnostics,
    ) -> SourceDb {
        let mut db = SourceDb { files: Vec::new() };
        let mut by_name: HashMap<String, FileId> = HashMap::new();
        let root = db.add(root_name, root_text, diags);
        by_name.insert(normalize(root_name), root);
        let mut queue = vec![root];
        while let Some(id) = queue.pop() {
            let importer = db.files[id.0 as usize].source.name().to_string();
            let requests: Vec<(String, hfc_grammar::Span)> = db.files[id.0 as usize]
                .ast
                .items
                .iter()
                .filter_map(|item| match item {
                    ast::Item::Import(import) => {
                        Some((import.path.value.clone(), import.path.span))
                    }
                    _ => None,
                })
                .collect();
            let mut loaded = Vec::with_capacity(requests.len());
            for (path, span) in requests {
                let name = import_name(&importer, &path);
                if let Some(&existing) = by_name.get(&name) {
                    loaded.push(Some(existing));
                    continue;
                }
                let text = match name.strip_prefix(STD_PREFIX) {
                    Some(std_name) => hfc_stdlib::file(std_name)
                        .map(str::to_string)
                        .ok_or_else(|| "no such file in the standard library".to_string()),
                    None => loader.load(&name),
                };
                match text {
                    Ok(text) => {
                        let new = db.add(&name, &text, diags);
                        by_name.insert(name, new);
                        queue.push(new);
                        loaded.push(Some(new));
                    }
                    Err(reason) => {
                        diags.push(diagnostics::resolve::import_not_found(
                            id, span, &path, &reason,
                        ));
                        loaded.push(None);
                    }
                }
            }
            db.files[id.0 as usize].imports = loaded;
        }
        db
    }

    fn add(&mut self, name: &str, text: &str, diags: &mut Diagnostics) -> FileId {
        let id = FileId(self.files.len() as u32);
        let source = SourceFile::new(id, name, text);
        let (ast, syntax_errors) = hfc_grammar::parse(&source);
        diags.extend(
            syntax_errors
                .iter()
                .map(|e| diagnostics::syntax::from_syntax_error(id, e)),
        );
        self.files.push(Parsed {
            source,
            ast,
            syntax_errors,
            imports: Vec::new(),
        });
        id
    }

    /// The root file's id.
    pub fn root(&self) -> FileId {
        FileId(0)
    }

    /// A file.
    pub fn parsed(&self, id: FileId) -> &Parsed {
        &self.files[id.0 as usize]
    }

    /// A file's text and name.
    pub fn source(&self, id: FileId) -> &SourceFile {
        &self.parsed(id).source
    }

    /// Every file, root first.
    pub fn files(&self) -> impl Iterator<Item = &Parsed> {
        self.files.iter()
    }

    /// The files `root` imports, transitively, each after the files it imports (so a norm is
    /// defined before the norms that use it), without `root` itself.
    pub fn imports_in_order(&self, root: FileId) -> Vec<FileId> {
        let mut order = Vec::new();
        let mut seen = vec![false; self.files.len()];
        seen[root.0 as usize] = true;
        self.visit_imports(root, &mut seen, &mut order);
        order
    }

    fn visit_imports(&self, id: FileId, seen: &mut [bool], order: &mut Vec<FileId>) {
        for import in self.parsed(id).imports.iter().flatten() {
            if !seen[import.0 as usize] {
                seen[import.0 as usize] = true;
                self.visit_imports(*import, seen, order);
                order.push(*import);
            }
        }
    }
}

/// The name under which an import of `path` from the file `importer` is loaded: `std/...` as
/// is, anything else relative to the importer's folder, with `.` and `..` folded.
fn import_name(importer: &str, path: &str) -> String {
    if path.starts_with(STD_PREFIX) {
        return path.to_string();
    }
    // Inside the standard library this also makes bare names resolve to `std/...`.
    let base = Path::new(importer).parent().unwrap_or(Path::new(""));
    normalize(&base.join(path).to_string_lossy())
}

fn normalize(path: &str) -> String {
    let mut out = PathBuf::new();
    for component in Path::new(path).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_relative_to_the_importer() {
        assert_eq!(import_name("models/a.hfm", "norms.hfm"), "models/norms.hfm");
        assert_eq!(import_name("models/a.hfm", "../lib/n.hfm"), "lib/n.hfm");
        assert_eq!(import_name("a.hfm", "std/norms.hfm"), "std/norms.hfm");
        assert_eq!(import_name("std/x.hfm", "norms.hfm"), "std/norms.hfm");
    }
}
