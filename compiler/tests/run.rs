//! The `hfc run` contract on the real binary: outputs, report fields, exit codes, and every
//! kind of bad data file (exit 2 with a message naming the file and the fault).

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
        .output()
        .expect("hfc runs")
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("exited normally")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hfc-run-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json is JSON")
}

#[test]
fn lowrank_example_is_certified_and_writes_every_output() {
    let out_dir = temp_dir("lowrank");
    let out = hfc(&[
        "run",
        "examples/lowrank.hfm",
        "--out",
        out_dir.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("--json prints the report");
    let r = report(&out_dir);
    assert_eq!(printed, r);
    for field in [
        "model",
        "objective",
        "loss",
        "regularizer",
        "lambda",
        "rank",
        "polar_value",
        "gap",
        "relative_gap",
        "certificate",
        "iterations",
        "outer_iterations",
        "seconds",
        "backend",
        "converged",
        "lambda_max",
    ] {
        assert!(r.get(field).is_some(), "report.json lacks `{field}`");
    }
    assert_eq!(r["model"], "lowrank");
    assert_eq!(r["certificate"], "exact");
    assert_eq!(r["converged"], true);
    // The JIT is the default back end; the report says how long compiling took.
    assert_eq!(r["backend"], "jit");
    let compile = r["backend_info"]["compile_seconds"]
        .as_f64()
        .expect("compile time");
    assert!(compile > 0.0 && compile < 5.0, "compile {compile}");
    assert_eq!(r["backend_info"]["precision"], "f64");
    assert!(r["relative_gap"].as_f64().expect("a gap") <= 1e-8);
    let (objective, loss, reg) = (
        r["objective"].as_f64().expect("number"),
        r["loss"].as_f64().expect("number"),
        r["regularizer"].as_f64().expect("number"),
    );
    assert!((objective - loss - reg).abs() <= 1e-9 * objective);
    assert!(r["polar_value"].as_f64().expect("number") <= 1.0 + 1e-8);
    for file in ["U.npy", "V.npy", "convergence.svg"] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
    // Atomic writes leave no temporary files behind.
    let leftovers: Vec<_> = std::fs::read_dir(&out_dir)
        .expect("readable")
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty());
    // Deterministic for a seed, and the same to the last bit on the interpreter.
    let again = temp_dir("lowrank-again");
    let out = hfc(&[
        "run",
        "examples/lowrank.hfm",
        "--out",
        again.to_str().expect("utf-8"),
        "--quiet",
        "--backend",
        "interp",
    ]);
    assert_eq!(code(&out), 0);
    assert_eq!(stderr(&out), "");
    let again = report(&again);
    assert_eq!(again["backend"], "interp");
    assert_eq!(again["objective"], r["objective"]);
    assert_eq!(again["iterations"], r["iterations"]);
}

#[test]
fn set_replaces_a_parameter_and_unknown_ones_are_usage_errors() {
    let out_dir = temp_dir("set");
    let out = hfc(&[
        "run",
        "examples/lowrank.hfm",
        "--set",
        "lambda=1000",
        "--out",
        out_dir.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(
        (r["rank"].as_u64(), r["lambda"].as_f64()),
        (Some(0), Some(1000.0))
    );
    assert!(r["lambda_max"].as_f64().expect("number") < 1000.0);
    let out = hfc(&["run", "examples/lowrank.hfm", "--set", "mu=1", "--quiet"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("has no parameter `mu`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_iteration_limit_exits_3_with_results_written() {
    let out_dir = temp_dir("limit");
    let out = hfc(&[
        "run",
        "examples/completion.hfm",
        "--max-iter",
        "2",
        "--out",
        out_dir.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(r["converged"], false);
    assert_eq!(r["certificate"], "none");
    assert_eq!(r["iterations"].as_u64(), Some(2));
}

#[test]
fn models_the_runtime_cannot_run_are_model_errors() {
    let out = hfc(&["run", "examples/deep_wd.hfm"]);
    assert_eq!(code(&out), 1);
    assert!(
        stderr(&out).contains("hfc::run::unsupported"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn cp_example_finds_the_planted_rank_with_a_heuristic_certificate() {
    let out_dir = temp_dir("cp3");
    let out = hfc(&[
        "run",
        "examples/cp3.hfm",
        "--out",
        out_dir.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(r["rank"], 3);
    assert_eq!(r["converged"], true);
    // The tensor spectral norm is NP-hard: the power method's value only passes a test.
    assert_eq!(r["certificate"], "heuristic");
    assert_eq!(r["data"]["shape"], serde_json::json!([30, 20, 10]));
    for (k, (name, rows)) in [("A", 30), ("B", 20), ("C", 10)].into_iter().enumerate() {
        assert_eq!(r["factors"][k]["name"], name);
        assert_eq!(r["factors"][k]["shape"], serde_json::json!([rows, 3]));
        assert!(out_dir.join(format!("{name}.npy")).exists());
    }
    let polar = r["polar_value"].as_f64().expect("number");
    assert!(polar <= 0.5 * (1.0 + 1e-6), "polar value {polar}");
}

#[test]
fn a_matrix_given_to_a_cp_model_is_a_data_error() {
    let dir = temp_dir("cp3-matrix");
    let path = dir.join("T.npy");
    std::fs::write(&path, npy("<f8", "(2, 2)", &f64s(&[1.0, 2.0, 3.0, 4.0]))).expect("write");
    let data = format!("T={}", path.display());
    let out = hfc(&["run", "examples/cp3.hfm", "--data", &data, "--quiet"]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("expected a tensor of 3 axes in a .npy file, found 2 axes"),
        "{}",
        stderr(&out)
    );
}

/// A `.npy` image with a given header dictionary and body.
fn npy(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header);
    out.extend(body);
    out
}

fn f64s(values: &[f64]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Runs a lowrank model whose data file has the given name and bytes.
fn run_with_data(case: &str, declared: &str, file: &str, bytes: Option<&[u8]>) -> Output {
    let dir = temp_dir(case);
    let rows = declared
        .trim_start_matches('[')
        .split(',')
        .next()
        .unwrap_or("m");
    let model = format!(
        "model m {{
    data Y : {declared} = load(\"{file}\");
    factor U : [{rows}, r]; factor V : [n, r];
    fit Y ~ U * V';
    loss squared;
    reg 0.1 * sum(i) norm2(U[:, i]) * norm2(V[:, i]);
}}"
    );
    let path = dir.join("m.hfm");
    std::fs::write(&path, model).expect("write model");
    if let Some(bytes) = bytes {
        std::fs::write(dir.join(file), bytes).expect("write data");
    }
    hfc(&["run", path.to_str().expect("utf-8"), "--quiet"])
}

/// (name, declared shape, file name, its bytes (None: absent), expected message).
type Case = (
    &'static str,
    &'static str,
    &'static str,
    Option<Vec<u8>>,
    &'static str,
);

#[test]
fn bad_data_is_exit_2_with_the_file_and_the_fault() {
    let good = f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let mut truncated_header = npy("<f8", "(2, 3)", &good);
    truncated_header.truncate(20);
    let mut nan = f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    nan[32..40].copy_from_slice(&f64::NAN.to_le_bytes());
    let cases: Vec<Case> = vec![
        ("missing", "[m, n]", "Y.npy", None, "Y.npy: file not found"),
        (
            "header",
            "[m, n]",
            "Y.npy",
            Some(truncated_header),
            "Y.npy: malformed header: truncated header",
        ),
        (
            "magic",
            "[m, n]",
            "Y.npy",
            Some(b"not numpy at all".to_vec()),
            "not a NumPy file",
        ),
        (
            "dtype",
            "[m, n]",
            "Y.npy",
            Some(npy("|b1", "(2, 3)", &[1, 0, 1, 0, 1, 0])),
            "unsupported dtype `|b1`",
        ),
        (
            "shape",
            "[5, n]",
            "Y.npy",
            Some(npy("<f8", "(2, 3)", &good)),
            "axis 1 has 2 entries, but `Y` is declared [5, n]",
        ),
        (
            "nan",
            "[m, n]",
            "Y.npy",
            Some(npy("<f8", "(2, 3)", &nan)),
            "NaN at row 2, column 2",
        ),
        (
            "empty",
            "[m, n]",
            "Y.csv",
            Some(b"".to_vec()),
            "the matrix is empty",
        ),
        (
            "body",
            "[m, n]",
            "Y.npy",
            Some(npy("<f8", "(2, 3)", &good[..20])),
            "malformed data",
        ),
        (
            "mtx",
            "[m, n]",
            "Y.mtx",
            Some(b"%%MatrixMarket matrix coordinate real general\n2 2 3\n1 1 1.0\n".to_vec()),
            "the size line promises 3 entries, the file has 1",
        ),
    ];
    for (case, declared, file, bytes, message) in cases {
        let out = run_with_data(case, declared, file, bytes.as_deref());
        assert_eq!(code(&out), 2, "{case}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(message),
            "{case}: expected `{message}` in:\n{}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{case}");
    }
}

/// `hfc run --backend gpu` on whatever adapter is there (lavapipe in CI): the certificate is
/// recomputed in f64 and matches the interpreter's run. Without an adapter: exit 2 with a
/// message saying how to get one, and the test skips unless `HFC_REQUIRE_GPU` is set.
#[test]
fn gpu_backend_certifies_in_f64_and_matches_the_interpreter() {
    let cpu_dir = temp_dir("gpu-cpu");
    let out = hfc(&[
        "run",
        "examples/lowrank.hfm",
        "--out",
        cpu_dir.to_str().expect("utf-8"),
        "--quiet",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let cpu = report(&cpu_dir);
    let gpu_dir = temp_dir("gpu");
    let out = hfc(&[
        "run",
        "examples/lowrank.hfm",
        "--backend",
        "gpu",
        "--out",
        gpu_dir.to_str().expect("utf-8"),
        "--quiet",
    ]);
    if code(&out) == 2 && stderr(&out).contains("no GPU adapter") {
        assert!(
            std::env::var_os("HFC_REQUIRE_GPU").is_none(),
            "HFC_REQUIRE_GPU is set: {}",
            stderr(&out)
        );
        assert!(stderr(&out).contains("mesa-vulkan-drivers"));
        return;
    }
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&gpu_dir);
    assert_eq!(r["backend"], "gpu");
    assert_eq!(r["certificate"], "exact");
    assert_eq!(r["backend_info"]["precision"], "f32");
    assert!(
        r["backend_info"]["adapter"]
            .as_str()
            .is_some_and(|a| !a.is_empty())
    );
    assert!(r["backend_info"]["device_type"].is_string());
    // The f64 numbers at the GPU's own factors are in the report, and the GPU ran to f32's
    // tolerance, not the model's 1e-8.
    let at_gpu = &r["gpu"]["f64_at_gpu_factors"];
    assert!(at_gpu["objective"].as_f64().is_some() && at_gpu["relative_gap"].as_f64().is_some());
    assert!(r["gpu"]["tol"].as_f64().expect("a tolerance") > 1e-4);
    assert!(r["relative_gap"].as_f64().expect("a gap") <= 1e-8);
    assert_eq!(r["rank"], cpu["rank"]);
    let (g, c) = (
        r["objective"].as_f64().expect("number"),
        cpu["objective"].as_f64().expect("number"),
    );
    assert!((g - c).abs() <= 1e-8 * c.abs(), "gpu {g} vs interp {c}");
}

#[test]
fn emit_wgsl_prints_the_shaders_in_either_precision() {
    for (precision, alias) in [("f32", "alias T = f32;"), ("f64", "alias T = f64;")] {
        let out = hfc(&[
            "emit",
            "wgsl",
            "examples/completion.hfm",
            "--precision",
            precision,
        ]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.starts_with("// program completion"), "{text}");
        assert!(text.contains(alias) && text.contains("@compute"));
    }
}

/// Dropout: the adaptive rate is certified and reports its closed form; a fixed rate keeps
/// its size, has no certificate and warns that splitting columns lowers the objective; a
/// fixed rate without a size is refused before any data is read.
#[test]
fn dropout_reports_its_closed_form_and_the_fixed_rate_its_split() {
    let dir = temp_dir("dropout");
    std::fs::copy(repo().join("examples/Y.npy"), dir.join("Y.npy")).expect("copy data");
    let model = |name: &str, rate: &str, solve: &str| {
        format!(
            "model {name} {{
    data Y : [m, n] = load(\"Y.npy\");
    factor U : [m, r]; factor V : [n, r];
    fit Y ~ U * V';
    loss squared;
    reg dropout({rate});
    {solve}
}}"
        )
    };
    let text = [
        model("adaptive", "0.05, adaptive", ""),
        model("fixed", "0.2", "solve { init_rank = 8; }"),
        model("unsized", "0.2", ""),
    ]
    .join("\n");
    let path = dir.join("dropout.hfm");
    std::fs::write(&path, text).expect("write model");
    let path = path.to_str().expect("utf-8");
    let run = |name: &str| {
        let out_dir = dir.join(name);
        let out = hfc(&[
            "run",
            path,
            "--model",
            name,
            "--out",
            out_dir.to_str().expect("utf-8"),
        ]);
        (out, out_dir)
    };

    let (out, out_dir) = run("adaptive");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(r["certificate"], "exact");
    let dropout = &r["dropout"];
    assert_eq!(dropout["adaptive"], true);
    let closed = &dropout["closed_form"];
    assert_eq!(r["rank"], closed["rank"]);
    assert!(
        closed["relative_error"].as_f64().expect("number") <= 1e-5,
        "{closed}"
    );
    assert!(dropout["equalization_spread"].as_f64().expect("number") <= 1e-9);
    assert_eq!(dropout["split_objective"], r["objective"]);

    let (out, out_dir) = run("fixed");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(
        (r["certificate"].as_str(), r["rank"].as_u64()),
        (Some("none"), Some(8))
    );
    let split = r["dropout"]["split_objective"].as_f64().expect("number");
    assert!(split < r["objective"].as_f64().expect("number"));
    assert!(
        stderr(&out).contains("fixed-rate dropout does not limit the size"),
        "{}",
        stderr(&out)
    );

    let (out, _) = run("unsized");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("hfc::run::fixed_size_required"),
        "{}",
        stderr(&out)
    );
}

fn read_npy(path: &Path) -> ndarray::Array2<f64> {
    use ndarray_npy::ReadNpyExt;
    let file = std::fs::File::open(path).expect("npy written");
    ndarray::Array2::<f64>::read_npy(file).expect("an f64 matrix")
}

/// The three-layer parallel example runs with its heuristic polar, writes the first layer as
/// declared (`[d, 4, r]`), and `hfc predict` reproduces Σᵢ relu(relu(X W1ᵢ) w2ᵢ) w3ᵢᵀ
/// computed here from the written layers.
#[test]
fn deep_parallel_example_runs_and_predict_applies_all_three_layers() {
    use ndarray_npy::ReadNpyExt;
    let out_dir = temp_dir("deep_relu");
    let out = hfc(&[
        "run",
        "examples/deep_relu.hfm",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    // The local polar stays above λ within the example's budget: exit 3, not converged.
    assert!(matches!(code(&out), 0 | 3), "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(r["polar_solver"], "deep_relu_ascent");
    assert_eq!(r["polar_exact"], false);
    assert_ne!(r["certificate"], "exact");
    assert!(r["loss"].as_f64().expect("number") <= 1e-5, "{}", r["loss"]);
    let rank = r["rank"].as_u64().expect("rank") as usize;
    assert!(rank >= 1);
    assert_eq!(r["factors"][0]["shape"], serde_json::json!([2, 4, rank]));

    let prediction = out_dir.join("fitted.npy");
    let out = hfc(&[
        "predict",
        "examples/deep_relu.hfm",
        "--factors",
        out_dir.to_str().expect("utf-8"),
        "--input",
        "examples/X.npy",
        "--out",
        prediction.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let x = read_npy(&repo().join("examples/X.npy"));
    let file = std::fs::File::open(out_dir.join("W1.npy")).expect("W1 written");
    let w1 = ndarray::ArrayD::<f64>::read_npy(file).expect("an f64 array");
    let (w2, w3) = (
        read_npy(&out_dir.join("W2.npy")),
        read_npy(&out_dir.join("W3.npy")),
    );
    let mut expected = ndarray::Array2::<f64>::zeros((x.nrows(), w3.nrows()));
    for i in 0..rank {
        let layer = w1
            .index_axis(ndarray::Axis(2), i)
            .into_dimensionality::<ndarray::Ix2>()
            .expect("[d, 4]")
            .to_owned();
        let h2 = x
            .dot(&layer)
            .mapv(|a| a.max(0.0))
            .dot(&w2.column(i))
            .mapv(|a| a.max(0.0));
        for (mut row, &a) in expected.outer_iter_mut().zip(&h2) {
            row.scaled_add(a, &w3.column(i));
        }
    }
    let got = read_npy(&prediction);
    let error = (&got - &expected)
        .iter()
        .fold(0.0f64, |m, e| m.max(e.abs()));
    assert!(error <= 1e-12, "prediction differs by {error}");
    // The fitted network reproduces the teacher's outputs.
    let y = read_npy(&repo().join("examples/relu_Y.npy"));
    let misfit = (&got - &y).iter().fold(0.0f64, |m, e| m.max(e.abs()));
    assert!(misfit <= 1e-2, "largest misfit {misfit}");

    let out = hfc(&[
        "predict",
        "examples/deep_relu.hfm",
        "--factors",
        out_dir.to_str().expect("utf-8"),
        "--input",
        "examples/Y.npy",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("4 per input feature"),
        "{}",
        stderr(&out)
    );
}

/// The ReLU example is certified (d = 2: exact polar), and `hfc predict` applies the fitted
/// factors to inputs: on the training inputs it reproduces relu(X W1) W2ᵀ computed here.
#[test]
fn relu_example_is_certified_and_predict_applies_the_network() {
    let out_dir = temp_dir("relu");
    let out = hfc(&[
        "run",
        "examples/relu_net.hfm",
        "--out",
        out_dir.to_str().expect("utf-8"),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let r = report(&out_dir);
    assert_eq!(r["certificate"], "exact");
    assert_eq!(r["polar_solver"], "relu_patterns");
    assert_eq!(r["inputs"][0]["shape"], serde_json::json!([200, 2]));
    assert!(r["loss"].as_f64().expect("number") <= 1e-6);

    let prediction = out_dir.join("fitted.npy");
    let out = hfc(&[
        "predict",
        "examples/relu_net.hfm",
        "--factors",
        out_dir.to_str().expect("utf-8"),
        "--input",
        "examples/X.npy",
        "--out",
        prediction.to_str().expect("utf-8"),
        "--json",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("--json prints JSON");
    assert_eq!(printed["shape"], serde_json::json!([200, 1]));
    let x = read_npy(&repo().join("examples/X.npy"));
    let w1 = read_npy(&out_dir.join("W1.npy"));
    let w2 = read_npy(&out_dir.join("W2.npy"));
    let expected = x.dot(&w1).mapv(|a| a.max(0.0)).dot(&w2.t());
    let got = read_npy(&prediction);
    let error = (&got - &expected)
        .iter()
        .fold(0.0f64, |m, e| m.max(e.abs()));
    assert!(error <= 1e-12, "prediction differs by {error}");

    // Wrong inputs, a missing factor and a model without inputs: usage errors (exit 2).
    for (args, message) in [
        (
            vec!["examples/relu_net.hfm", "--input", "examples/Y.npy"],
            "one per input feature",
        ),
        (
            vec!["examples/lowrank.hfm", "--input", "examples/X.npy"],
            "has no input data",
        ),
    ] {
        let mut full = vec!["predict"];
        full.extend(args);
        full.extend(["--factors", out_dir.to_str().expect("utf-8")]);
        let out = hfc(&full);
        assert_eq!(code(&out), 2, "{}", stderr(&out));
        assert!(stderr(&out).contains(message), "{}", stderr(&out));
    }
    let out = hfc(&[
        "predict",
        "examples/relu_net.hfm",
        "--factors",
        "/nonexistent-hfc-factors",
        "--input",
        "examples/X.npy",
    ]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("W1.npy"), "{}", stderr(&out));
}
