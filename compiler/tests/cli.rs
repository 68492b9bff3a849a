//! The command-line contract (DESIGN section 8), tested on the real binary: exit codes, the
//! JSON fields scripts rely on, no colour when output is not a terminal, and `hfc atoms`
//! (the generated reference, snapshot-tested so the docs cannot drift).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the compiler crate is in the repository")
        .to_path_buf()
}

fn hfc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hfc"))
        .args(args)
        .current_dir(repo())
        .env_remove("NO_COLOR")
        .env_remove("COLUMNS")
        .output()
        .expect("hfc runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(out)))
}

/// Writes a model to a fresh temporary folder; returns its path.
fn temp_model(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hfc-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("{name}.hfm"));
    std::fs::write(&path, text).expect("write model");
    path
}

#[test]
fn check_exits_0_on_a_clean_model_and_prints_nothing_on_stdout() {
    let out = hfc(&["check", "examples/lowrank.hfm"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "");
    assert!(stderr(&out).contains("no problems"));
}

#[test]
fn warnings_exit_0_unless_denied() {
    let out = hfc(&["check", "examples/deep_wd.hfm"]);
    assert_eq!(code(&out), 0);
    assert!(stderr(&out).contains("hfc::degree::mismatch"));
    let out = hfc(&["check", "examples/deep_wd.hfm", "--deny-warnings"]);
    assert_eq!(code(&out), 1);
}

#[test]
fn errors_exit_1_and_io_or_usage_problems_exit_2() {
    let out = hfc(&["check", "tests/ui/shape/product_mismatch.hfm"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("hfc::shape::mismatch"));

    let out = hfc(&["check", "no/such/model.hfm"]);
    assert_eq!(code(&out), 2);
    assert_eq!(
        stderr(&out),
        "error: cannot read `no/such/model.hfm`: no such file\n"
    );

    let out = hfc(&["check"]);
    assert_eq!(code(&out), 2);
    let out = hfc(&["frobnicate", "x.hfm"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn check_json_carries_the_contract_fields() {
    let out = hfc(&["check", "examples/deep_wd.hfm", "--json"]);
    assert_eq!(code(&out), 0);
    let v = json(&out);
    assert_eq!(v["degree"]["map"], 3);
    assert_eq!(v["degree"]["regularizer"], 2);
    let diags = v["diagnostics"].as_array().expect("diagnostics array");
    assert_eq!(diags.len(), 1);
    let d = &diags[0];
    assert_eq!(d["code"], "hfc::degree::mismatch");
    assert_eq!(d["severity"], "warning");
    assert_eq!(d["file"], "examples/deep_wd.hfm");
    assert_eq!(d["line"], 7);
    assert_eq!(d["column"], 10);
    assert_eq!(
        d["message"],
        "the regularizer has degree 2 but the map has degree 3"
    );
    assert!(
        d["help"]
            .as_str()
            .is_some_and(|h| h.contains("norm2(W1[:, i])"))
    );
}

#[test]
fn check_json_on_errors_exits_1_with_positions() {
    let out = hfc(&["check", "tests/ui/syntax/several_errors.hfm", "--json"]);
    assert_eq!(code(&out), 1);
    let v = json(&out);
    let found: Vec<(String, u64)> = v["diagnostics"]
        .as_array()
        .expect("array")
        .iter()
        .map(|d| {
            (
                d["code"].as_str().unwrap_or("").to_string(),
                d["line"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        found,
        vec![
            ("hfc::syntax::unexpected_token".to_string(), 4),
            ("hfc::syntax::unknown_statement".to_string(), 9),
            ("hfc::resolve::unknown_function".to_string(), 12),
        ]
    );
    assert!(v["degree"]["map"].is_null());
}

#[test]
fn explain_json_carries_the_contract_fields() {
    let out = hfc(&["explain", "examples/lowrank.hfm", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["map_degree"], 2);
    assert_eq!(v["regularizer_degree"], 2);
    assert_eq!(v["induced_regularizer"], "‖X‖_*");
    assert_eq!(v["polar"], "σ_max(Z)");
    assert_eq!(v["polar_exact"], true);
    assert_eq!(v["certificate"], "exact");

    let out = hfc(&["explain", "examples/nmf.hfm", "--json"]);
    let v = json(&out);
    assert_eq!(v["polar_exact"], false);
    assert_eq!(v["certificate"], "heuristic");

    let out = hfc(&["explain", "examples/deep_wd.hfm", "--json"]);
    assert_eq!(code(&out), 0);
    let v = json(&out);
    assert!(v["induced_regularizer"].is_null());
    assert_eq!(v["certificate"], "none");
}

#[test]
fn explain_text_names_the_nuclear_norm_and_its_polar() {
    let out = hfc(&["explain", "examples/lowrank.hfm"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    assert!(text.contains("Ω(X) = ‖X‖_*    (nuclear norm)"), "{text}");
    assert!(text.contains("Ω°(Z) = σ_max(Z)"), "{text}");
    assert!(text.contains("(exact)"), "{text}");
}

#[test]
fn explain_of_a_model_with_errors_exits_1() {
    let out = hfc(&["explain", "tests/ui/degree/sigmoid.hfm"]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("hfc::degree::map_not_homogeneous"));
    assert_eq!(stdout(&out), "");
}

#[test]
fn explain_chooses_among_several_models() {
    let two = "model a {
        data Y : [m, n]; factor U : [m, r]; factor V : [n, r];
        fit Y ~ U * V'; loss squared; reg sum(i) norm2(U[:, i]) * norm2(V[:, i]);
    }
    model b {
        data Y : [m, n]; factor U : [m, r]; factor V : [n, r];
        fit Y ~ U * V'; loss squared; reg sum(i) norm1(U[:, i]) * norm1(V[:, i]);
    }";
    let path = temp_model("two", two);
    let path = path.to_string_lossy();
    let out = hfc(&["explain", &path, "--json"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("--model"));
    let out = hfc(&["explain", &path, "--json", "--model", "b"]);
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out)["induced_regularizer"], "‖X‖₁ = Σⱼₖ |Xⱼₖ|");
    let out = hfc(&["explain", &path, "--model", "c"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("has no model `c` (its models: a, b)"));
    let out = hfc(&["explain", &path]);
    assert_eq!(code(&out), 0);
    assert_eq!(stdout(&out).matches("model ").count(), 2);
}

#[test]
fn imports_resolve_relative_to_the_model_file() {
    let norms = temp_model("lib", "norm mine(x; g) = norm2(x) + g * tv(x);");
    let dir = norms.parent().expect("a folder");
    let model = dir.join("uses.hfm");
    std::fs::write(
        &model,
        "import \"lib.hfm\";
         model m {
            data Y : [m, n]; factor U : [m, r]; factor V : [n, r];
            fit Y ~ U * V'; loss squared;
            reg sum(i) mine(U[:, i]; 0.5) * norm2(V[:, i]);
         }",
    )
    .expect("write");
    let out = hfc(&["check", &model.to_string_lossy()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}

#[test]
fn output_has_no_colour_when_not_a_terminal_unless_asked() {
    let out = hfc(&["check", "examples/deep_wd.hfm"]);
    assert!(!stderr(&out).contains('\u{1b}'));
    let out = hfc(&["check", "examples/deep_wd.hfm", "--color", "always"]);
    assert!(stderr(&out).contains('\u{1b}'));
}

#[test]
fn atoms_is_generated_from_the_catalog() {
    let out = hfc(&["atoms"]);
    assert_eq!(code(&out), 0);
    let path = repo().join("tests/snapshots/atoms.txt");
    expect_test::ExpectFile {
        path,
        position: file!(),
    }
    .assert_eq(&stdout(&out));
    let out = hfc(&["atoms", "--json"]);
    let v = json(&out);
    let names: Vec<&str> = v["atoms"]
        .as_array()
        .expect("atoms")
        .iter()
        .filter_map(|a| a["name"].as_str())
        .collect();
    assert!(names.contains(&"norm2") && names.contains(&"relu") && names.contains(&"cp"));
    assert_eq!(
        v["codes"].as_array().map(Vec::len),
        Some(hfc::diagnostics::codes::ALL.len())
    );
}

/// The README's transcripts are real: each ```text block that starts with `$ hfc ...` must
/// be what that command prints (standard output and error together, as a terminal shows).
#[test]
fn readme_transcripts_match_the_binary() {
    let readme = std::fs::read_to_string(repo().join("README.md")).expect("README.md");
    let mut checked = 0;
    for block in readme.split("```text\n").skip(1) {
        let block = block.split("```").next().unwrap_or("");
        let Some((command, expected)) = block.split_once('\n') else {
            continue;
        };
        let Some(command) = command.strip_prefix("$ hfc ") else {
            continue;
        };
        let args: Vec<&str> = command.split_whitespace().collect();
        let out = hfc(&args);
        let actual = format!("{}{}", stderr(&out), stdout(&out));
        assert_eq!(actual, expected, "README transcript of `hfc {command}`");
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} transcripts found");
}

#[test]
fn the_standard_library_is_built_in() {
    let out = hfc(&["explain", "std/tv_factorization.hfm"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).starts_with("model tv_factorization\n"));
    let out = hfc(&["check", "std/no_such_model.hfm"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn emit_prints_the_generated_code_or_says_why_not() {
    let out = hfc(&["emit", "clif", "std/lowrank.hfm"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let clif = stdout(&out);
    // One function per kernel, each headed by its name.
    assert_eq!(clif.matches("; kernel ").count(), 14);
    assert!(clif.contains("; kernel grad_left\nfunction u0:2(i64) -> i32"));
    assert!(
        clif.contains("call fn0"),
        "GEMM goes through the faer helper"
    );
    let kir = hfc(&["emit", "kir", "std/lowrank.hfm"]);
    assert_eq!(code(&kir), 0);
    assert!(stdout(&kir).starts_with("program lowrank\n"));
    // A model `hfc run` cannot lower yet is a model error, with its diagnostic.
    let deep = hfc(&["emit", "clif", "examples/deep_wd.hfm"]);
    assert_eq!(code(&deep), 1);
    assert!(
        stderr(&deep).contains("hfc::run::unsupported"),
        "{}",
        stderr(&deep)
    );
    // A CP model lowers: one gradient kernel per mode, with the Khatri–Rao products.
    let cp = hfc(&["emit", "kir", "examples/cp3.hfm"]);
    assert_eq!(code(&cp), 0, "{}", stderr(&cp));
    let kir = stdout(&cp);
    for kernel in ["grad_left", "grad_right", "grad_third", "apply_neg_grad_t"] {
        assert!(
            kir.contains(&format!("kernel {kernel}")),
            "{kernel} in\n{kir}"
        );
    }
    assert!(kir.contains("khatri_rao(%B, %C)"), "{kir}");
    assert_eq!(code(&hfc(&["emit", "llvm", "std/lowrank.hfm"])), 2);
}
