//! The golden corpus: every `ui/**/*.hfm` is checked; the diagnostics must match the file's
//! annotations exactly (each annotated code at its line, nothing unannotated), and their
//! rendering (80 columns, no colour) must equal the sibling `.stderr` file.
//! `UPDATE_EXPECT=1 cargo test -p hfc-tests --test ui` rewrites the `.stderr` files.
//! Files in deeper folders (`ui/<stage>/lib/*.hfm`) are imported by tests, not tests.

use std::collections::BTreeSet;
use std::path::Path;

use datatest_stable::Utf8Path;
use hfc::render::{self, Style};
use hfc_tests::{Annotation, DirLoader, annotations, crate_dir, golden};

fn ui(path: &Utf8Path, text: String) -> datatest_stable::Result<()> {
    let root = crate_dir().join("ui");
    let abs = crate_dir().join(path.as_std_path());
    let name = abs
        .strip_prefix(&root)
        .map_err(|_| format!("{path} is not under {}", root.display()))?
        .to_string_lossy()
        .replace('\\', "/");
    let mut loader = DirLoader { base: root.clone() };
    let checked = hfc::check(&name, &text, &mut loader);

    // Every annotation of every file of the test must be met, and every diagnostic annotated.
    let mut expected = BTreeSet::new();
    for parsed in checked.db.files() {
        let file = parsed.source.name().to_string();
        if file.starts_with("std/") {
            continue;
        }
        for a in annotations(parsed.source.text()).map_err(|e| format!("{file}: {e}"))? {
            expected.insert((file.clone(), a));
        }
    }
    let mut actual = BTreeSet::new();
    for d in checked.diagnostics.iter() {
        let source = checked.db.source(d.file());
        let line = source.line_col(d.span().start).line;
        actual.insert((
            source.name().to_string(),
            Annotation {
                line,
                severity: d.severity().as_str().to_string(),
                code: d.code().to_string(),
            },
        ));
    }
    // Every diagnostic explains itself: a fix (help) and the rule (note).
    for d in checked.diagnostics.iter() {
        if d.help().is_none() || d.note().is_none() {
            return Err(format!(
                "{name}: `{}` lacks a help or a note: {}",
                d.code(),
                d.message()
            )
            .into());
        }
    }
    let missing: Vec<_> = expected.difference(&actual).collect();
    let unexpected: Vec<_> = actual.difference(&expected).collect();
    let rendered = render::render_all(&checked.db, &checked.diagnostics, Style::plain());
    if !missing.is_empty() || !unexpected.is_empty() {
        return Err(format!(
            "{name}: annotations and diagnostics differ\n  expected but not reported: {missing:?}\n  reported but not annotated: {unexpected:?}\n\n{rendered}"
        )
        .into());
    }
    golden(&Path::new(&abs).with_extension("stderr"), &rendered);
    Ok(())
}

datatest_stable::harness! {
    { test = ui, root = "ui", pattern = r"^[a-z_]+/[a-z0-9_]+\.hfm$" },
}
