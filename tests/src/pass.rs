//! The pass tier: every standard-library file and every example checks clean (`deep_wd`:
//! exactly the degree-mismatch warning), `hfc explain` of each is snapshot-tested as text and
//! as JSON, and the golden corpus covers every diagnostic code.

use std::collections::BTreeSet;
use std::path::Path;

use hfc::NoFiles;
use hfc::diagnostics::codes;
use hfc_tests::{DirLoader, annotations, crate_dir, golden, repo_dir};
use serde_json::Value;

/// Checks a standard-library file as `std/<name>` (its imports come from the stdlib too).
fn check_std(name: &str, text: &str) -> hfc::Checked {
    hfc::check(&format!("std/{name}"), text, &mut NoFiles)
}

fn examples() -> Vec<(String, String)> {
    let dir = repo_dir().join("examples");
    let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
        .expect("examples/ exists")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "hfm"))
        .map(|p| {
            let name = format!(
                "examples/{}",
                p.file_name().unwrap_or_default().to_string_lossy()
            );
            (name, std::fs::read_to_string(&p).expect("readable example"))
        })
        .collect();
    files.sort();
    files
}

fn codes_of(checked: &hfc::Checked) -> Vec<&'static str> {
    checked.diagnostics.iter().map(|d| d.code()).collect()
}

#[test]
fn every_stdlib_file_checks_clean() {
    for (name, text) in hfc_stdlib::FILES {
        let checked = check_std(name, text);
        let rendered = hfc::render::render_all(
            &checked.db,
            &checked.diagnostics,
            hfc::render::Style::plain(),
        );
        assert!(
            checked.diagnostics.is_empty(),
            "std/{name} has diagnostics:\n{rendered}"
        );
        for model in &checked.models {
            assert!(
                model.induced.is_some(),
                "std/{name}: {} not derived",
                model.name
            );
        }
    }
}

#[test]
fn every_example_checks_clean_and_deep_wd_warns_once() {
    let examples = examples();
    let names: Vec<&str> = examples.iter().map(|(n, _)| n.as_str()).collect();
    // The six models of DESIGN section 6, verbatim, are examples.
    for wanted in ["lowrank", "nmf", "completion", "cp3", "relu_net", "deep_wd"] {
        assert!(
            names.contains(&format!("examples/{wanted}.hfm").as_str()),
            "missing example {wanted}"
        );
    }
    let base = repo_dir();
    for (name, text) in &examples {
        let checked = hfc::check(name, text, &mut DirLoader { base: base.clone() });
        let codes = codes_of(&checked);
        if name.ends_with("deep_wd.hfm") {
            assert_eq!(codes, vec!["hfc::degree::mismatch"], "{name}");
            let report = &checked.models[0];
            assert_eq!((report.map_degree, report.reg_degree), (Some(3), Some(2)));
        } else {
            assert!(codes.is_empty(), "{name}: {codes:?}");
        }
        // Every example starts with a one-line comment saying what it shows.
        assert!(text.starts_with("// "), "{name} has no leading comment");
    }
}

/// The fields of the `hfc explain --json` contract, with the JSON type each must have.
fn assert_explain_contract(name: &str, json: &Value) {
    let number_or_null = |v: &Value| v.is_u64() || v.is_null();
    assert!(number_or_null(&json["map_degree"]), "{name}: map_degree");
    assert!(
        number_or_null(&json["regularizer_degree"]),
        "{name}: regularizer_degree"
    );
    for key in ["induced_regularizer", "polar"] {
        assert!(
            json[key].is_string() || json[key].is_null(),
            "{name}: {key} is {:?}",
            json[key]
        );
    }
    assert!(json["polar_exact"].is_boolean(), "{name}: polar_exact");
    let certificate = json["certificate"].as_str().unwrap_or("");
    assert!(
        ["exact", "heuristic", "none"].contains(&certificate),
        "{name}: certificate {certificate:?}"
    );
}

#[test]
fn explain_snapshots_of_stdlib_models_and_examples() {
    let dir = crate_dir().join("explain");
    let mut seen = 0;
    let base = repo_dir();
    let mut cases: Vec<(String, hfc::Checked)> = hfc_stdlib::FILES
        .iter()
        .map(|(name, text)| {
            (
                format!("std_{}", name.trim_end_matches(".hfm")),
                check_std(name, text),
            )
        })
        .collect();
    for (name, text) in examples() {
        let stem = Path::new(&name)
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let checked = hfc::check(&name, &text, &mut DirLoader { base: base.clone() });
        cases.push((format!("example_{stem}"), checked));
    }
    for (stem, checked) in &cases {
        for model in &checked.models {
            let text = hfc::explain::to_text(model).expect("a clean model explains");
            golden(&dir.join(format!("{stem}.txt")), &text);
            let json = hfc::explain::to_json(model);
            assert_explain_contract(stem, &json);
            let pretty = serde_json::to_string_pretty(&json).expect("JSON serializes") + "\n";
            golden(&dir.join(format!("{stem}.json")), &pretty);
            seen += 1;
        }
    }
    assert!(seen >= 15, "only {seen} models explained");
}

#[test]
fn closed_forms_are_derived_where_the_catalog_has_them() {
    // One line per model: (stdlib file, Ω, polar exact?, certificate).
    let expected: &[(&str, Option<&str>, bool, &str)] = &[
        ("lowrank.hfm", Some("‖X‖_*"), true, "exact"),
        ("completion.hfm", Some("‖X‖_*"), true, "exact"),
        ("robust_pca.hfm", Some("‖X‖_*"), true, "exact"),
        ("nmf.hfm", None, false, "heuristic"),
        ("sparse_dictionary.hfm", None, false, "heuristic"),
        ("cp_tensor.hfm", None, false, "heuristic"),
        ("relu_network.hfm", None, false, "heuristic"),
        ("tv_factorization.hfm", None, false, "heuristic"),
        ("adaptive_dropout.hfm", Some("½λ₁‖X‖_*²"), true, "exact"),
    ];
    for &(name, omega, exact, certificate) in expected {
        let text = hfc_stdlib::file(name).expect("stdlib file");
        let checked = check_std(name, text);
        let induced = checked.models[0].induced.as_ref().expect("derived");
        if let Some(omega) = omega {
            assert_eq!(induced.omega.as_deref(), Some(omega), "{name}");
        }
        assert_eq!(induced.polar_exact, exact, "{name}");
        assert_eq!(induced.certificate.as_str(), certificate, "{name}");
    }
}

#[test]
fn the_golden_corpus_covers_every_code_with_thirty_files_or_more() {
    let root = crate_dir().join("ui");
    let mut covered = BTreeSet::new();
    let mut files = 0;
    for stage in std::fs::read_dir(&root).expect("tests/ui exists") {
        let stage = stage.expect("readable").path();
        if !stage.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&stage).expect("readable") {
            let path = entry.expect("readable").path();
            if path.extension().is_some_and(|x| x == "hfm") {
                files += 1;
                let text = std::fs::read_to_string(&path).expect("readable");
                for a in annotations(&text).expect("well-formed annotations") {
                    covered.insert(a.code);
                }
                assert!(
                    path.with_extension("stderr").exists(),
                    "{} has no .stderr",
                    path.display()
                );
            }
        }
    }
    assert!(files >= 30, "only {files} files in the corpus");
    let missing: Vec<&str> = codes::ALL
        .iter()
        .map(|c| c.name)
        // `hfc run` and data-file codes need data: the CLI tests produce them.
        .filter(|c| {
            !c.starts_with("hfc::run::")
                && !matches!(*c, "hfc::data::shape_mismatch" | "hfc::data::bad_file")
        })
        .filter(|c| !covered.contains(*c))
        .collect();
    assert!(missing.is_empty(), "codes no UI test produces: {missing:?}");
}
