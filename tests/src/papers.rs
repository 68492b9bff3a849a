//! The papers' experiments (issue 6, part 5), shared by the `paper-examples` binary and the
//! `papers` test target: each example generates its data from a fixed seed, solves a model of
//! `examples/papers/` in process (check, lower, JIT, solve: the path `hfc run` takes), and
//! measures what the paper shows, returning typed numbers (what the tests assert), an SVG
//! plot and the arrays a user needs to rerun the model with `hfc run`.
//!
//! - (a) [`lowrank`]: the nuclear norm's solution has the data's singular values
//!   soft-thresholded by λ.
//! - (b) [`dropout`]: dropout at a fixed size r = 160 on a 100 × 100 matrix, fixed rate
//!   against a rate that grows with r.
//! - (c) [`equalization`]: adaptive dropout equalizes ‖Uᵢ‖‖Vᵢ‖ across the columns at any r.
//! - (d) [`calcium`]: footprints and spike trains recovered from a synthetic calcium video.
//! - (e) [`relu_teacher`]: a planted three-neuron ReLU teacher recovered with the rank the
//!   solver finds; and [`cp_tensor`], the CP-tensor half (a further row of [`EXAMPLES`] with
//!   letter `e`): a planted rank-4 tensor recovered at its rank (heuristic polar, so "polar
//!   test passed" rather than a certificate).
//!
//! [`Size::Reduced`] shrinks each example for the test suite (the debug profile); the
//! models and seeds are the same.

use std::time::Instant;

use hfc_runtime::Value;
use hfc_runtime::linalg;
use hfc_runtime::plot::{Corner, Figure, Mark, PALETTE, Panel, Scale, Series};
use hfc_runtime::solve::Solution;
use hfc_runtime::solve::{Options, Stop, dropout_closed_form, equalization_spread};
use hfc_runtime::synth::{CalciumSpec, RELU_TEACHER, Synth};
use ndarray::{Array1, Array2, ArrayD, Axis};
use serde::Serialize;

use crate::{BackendKind, Solved, lower_model, solve_lowered, solve_tensor_lowered};

/// The model of (a), `examples/papers/a_lowrank.hfm`.
pub const LOWRANK_MODEL: &str = include_str!("../../examples/papers/a_lowrank.hfm");
/// The models of (b), `examples/papers/b_dropout.hfm`.
pub const DROPOUT_MODEL: &str = include_str!("../../examples/papers/b_dropout.hfm");
/// The model of (c), `examples/papers/c_equalization.hfm`.
pub const EQUALIZATION_MODEL: &str = include_str!("../../examples/papers/c_equalization.hfm");
/// The model of (d), `examples/papers/d_calcium.hfm`.
pub const CALCIUM_MODEL: &str = include_str!("../../examples/papers/d_calcium.hfm");
/// The model of (e), `examples/papers/e_relu_teacher.hfm`.
pub const RELU_MODEL: &str = include_str!("../../examples/papers/e_relu_teacher.hfm");
/// The model of (e)'s CP half, `examples/papers/e_cp_tensor.hfm`.
pub const CP_MODEL: &str = include_str!("../../examples/papers/e_cp_tensor.hfm");

/// Every model file of `examples/papers/` with its text.
pub const MODELS: &[(&str, &str)] = &[
    ("a_lowrank.hfm", LOWRANK_MODEL),
    ("b_dropout.hfm", DROPOUT_MODEL),
    ("c_equalization.hfm", EQUALIZATION_MODEL),
    ("d_calcium.hfm", CALCIUM_MODEL),
    ("e_cp_tensor.hfm", CP_MODEL),
    ("e_relu_teacher.hfm", RELU_MODEL),
];

/// How big an example runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Size {
    /// The paper's sizes (the binary's default; each well under a minute in release).
    Full,
    /// Smaller data for the test suite in the debug profile; the same models and seeds.
    Reduced,
}

/// What an example writes besides its numbers.
#[derive(Clone, Debug)]
pub struct Artifacts {
    /// The plot.
    pub svg: String,
    /// Arrays to write as `<name>.npy`: the data `hfc run` reads, and planted truths.
    pub arrays: Vec<(String, Array2<f64>)>,
    /// Tensors (three or more axes) to write as `<name>.npy`, like `arrays`.
    pub tensors: Vec<(String, ArrayD<f64>)>,
    /// The `hfc run` invocations that solve the same models on the written data, with `DIR`
    /// standing for the example's output folder.
    pub rerun: Vec<String>,
}

/// One example's result: its numbers and what it writes.
#[derive(Clone, Debug)]
pub struct Run<N> {
    /// The measured numbers.
    pub numbers: N,
    /// The plot, the arrays and the rerun commands.
    pub artifacts: Artifacts,
}

/// A one-line summary of an example's numbers.
pub trait Summary {
    /// The line.
    fn summary(&self) -> String;
}

/// An example's result in a form the binary writes: name, summary, JSON and artifacts.
#[derive(Clone, Debug)]
pub struct Report {
    /// The example's folder name (`a_lowrank`).
    pub name: &'static str,
    /// The one-line summary.
    pub summary: String,
    /// The numbers, the size and the rerun commands, as JSON.
    pub json: serde_json::Value,
    /// The plot, the arrays and the rerun commands.
    pub artifacts: Artifacts,
}

impl<N: Serialize + Summary> Run<N> {
    /// The report of this run of the example `name` at `size`.
    pub fn into_report(self, name: &'static str, size: Size) -> Report {
        let json = serde_json::json!({
            "example": name,
            "size": size,
            "numbers": serde_json::to_value(&self.numbers).unwrap_or(serde_json::Value::Null),
            "rerun": self.artifacts.rerun,
        });
        Report {
            name,
            summary: self.numbers.summary(),
            json,
            artifacts: self.artifacts,
        }
    }
}

/// An entry of [`EXAMPLES`].
pub struct Example {
    /// The letter of issue 6's list (several rows may share one: (e) has two halves).
    pub letter: &'static str,
    /// The output folder's name.
    pub name: &'static str,
    /// Runs it.
    pub run: fn(Size) -> Result<Report, String>,
}

/// Every example, in order.
pub const EXAMPLES: &[Example] = &[
    Example {
        letter: "a",
        name: "a_lowrank",
        run: |size| lowrank(size).map(|r| r.into_report("a_lowrank", size)),
    },
    Example {
        letter: "b",
        name: "b_dropout",
        run: |size| dropout(size).map(|r| r.into_report("b_dropout", size)),
    },
    Example {
        letter: "c",
        name: "c_equalization",
        run: |size| equalization(size).map(|r| r.into_report("c_equalization", size)),
    },
    Example {
        letter: "d",
        name: "d_calcium",
        run: |size| calcium(size).map(|r| r.into_report("d_calcium", size)),
    },
    Example {
        letter: "e",
        name: "e_relu_teacher",
        run: |size| relu_teacher(size).map(|r| r.into_report("e_relu_teacher", size)),
    },
    Example {
        letter: "e",
        name: "e_cp_tensor",
        run: |size| cp_tensor(size).map(|r| r.into_report("e_cp_tensor", size)),
    },
];

/// Solves `model` (by name; the first when `None`) of `text` with parameter overrides on the
/// JIT, with the options of the model's `solve` block; returns the solution and the seconds.
fn solve_model(
    text: &str,
    model: Option<&str>,
    overrides: &[(&str, f64)],
    data: Array2<f64>,
    inputs: &[Array2<f64>],
) -> Result<(Solved, f64), String> {
    let clock = Instant::now();
    let (lowered, options): (_, Options) = lower_model(text, model, overrides)?;
    let solved = solve_lowered(
        BackendKind::Jit,
        lowered,
        Value::Matrix(data),
        inputs,
        &options,
    )?;
    Ok((solved, clock.elapsed().as_secs_f64()))
}

/// `hfc run` on `file` with `--set` for each override and `--data` for each array.
fn rerun_command(
    file: &str,
    model: Option<&str>,
    overrides: &[(&str, f64)],
    data: &[(&str, &str)],
    out: &str,
) -> String {
    let mut command = format!("hfc run examples/papers/{file}");
    if let Some(model) = model {
        command.push_str(&format!(" --model {model}"));
    }
    for (name, value) in overrides {
        command.push_str(&format!(" --set {name}={value}"));
    }
    for (name, array) in data {
        command.push_str(&format!(" --data {name}=DIR/{array}.npy"));
    }
    command.push_str(&format!(" --out DIR/{out}"));
    command
}

/// The singular values of U Vᵀ, nonincreasing (empty for no columns).
fn product_singular_values(u: &Array2<f64>, v: &Array2<f64>) -> Vec<f64> {
    if u.ncols() == 0 {
        return Vec::new();
    }
    linalg::product_svd(u.view(), v.view())
        .map(|(_, s, _)| s.to_vec())
        .unwrap_or_default()
}

/// The number of singular values above `1e-8·σ₁`: the rank of a product as a matrix (a
/// factorization may have more columns than that).
fn numerical_rank(singular_values: &[f64]) -> usize {
    let top = singular_values.first().copied().unwrap_or(0.0);
    singular_values.iter().filter(|s| **s > 1e-8 * top).count()
}

/// ‖A − B‖_F / ‖B‖_F.
fn relative_frobenius(a: &Array2<f64>, b: &Array2<f64>) -> f64 {
    let diff = a - b;
    diff.iter().map(|x| x * x).sum::<f64>().sqrt()
        / b.iter()
            .map(|x| x * x)
            .sum::<f64>()
            .sqrt()
            .max(f64::MIN_POSITIVE)
}

/// ‖Uᵢ‖‖Vᵢ‖ per column, largest first.
fn column_products(u: &Array2<f64>, v: &Array2<f64>) -> Vec<f64> {
    let norm = |m: &Array2<f64>| m.map_axis(Axis(0), |c| c.dot(&c).sqrt());
    let mut products: Vec<f64> = (norm(u) * norm(v)).to_vec();
    products.sort_by(|a, b| b.total_cmp(a));
    products
}

/// Whether the solver stopped with an exact certificate (an exact polar and a gap).
fn certified(solved: &Solved) -> bool {
    let s = &solved.solution;
    s.stop == Stop::Optimal && solved.lowered.program.plan.polar_exact && s.polar_note.is_none()
}

// ---------------------------------------------------------------------------------------
// (a) Singular value thresholding.

/// The seed of (a)'s data.
pub const LOWRANK_SEED: u64 = 101;

/// The numbers of (a).
#[derive(Clone, Debug, Serialize)]
pub struct LowrankNumbers {
    /// Rows of Y.
    pub m: usize,
    /// Columns of Y.
    pub n: usize,
    /// The planted rank.
    pub planted_rank: usize,
    /// The noise's standard deviation.
    pub noise: f64,
    /// λ (the model's).
    pub lambda: f64,
    /// The rank of the solution.
    pub rank: usize,
    /// The closed form's rank: the number of singular values of Y above λ.
    pub closed_form_rank: usize,
    /// `max_k |ŝ_k − (σ_k − λ)| / (σ_k − λ)` over the closed form's nonzero values, with
    /// ŝ_k = 0 past the solution's rank.
    pub max_relative_difference: f64,
    /// F at the solution.
    pub objective: f64,
    /// The closed form's objective `Σ_{σ>λ} (λσ − λ²/2) + Σ_{σ≤λ} σ²/2`.
    pub closed_form_objective: f64,
    /// The duality gap relative to F.
    pub relative_gap: Option<f64>,
    /// Whether the run stopped with an exact certificate.
    pub certified: bool,
    /// Why the solver stopped.
    pub stop: String,
    /// Descent iterations.
    pub iterations: u64,
    /// Seconds to check, lower, compile and solve.
    pub seconds: f64,
}

impl Summary for LowrankNumbers {
    fn summary(&self) -> String {
        format!(
            "(a) {}x{} rank {} + noise, λ = {}: rank {} (closed form {}), singular values within {:.2e} (relative) of S_λ(σ(Y)), objective {:.10e} vs {:.10e}, {}, {:.2} s",
            self.m,
            self.n,
            self.planted_rank,
            self.lambda,
            self.rank,
            self.closed_form_rank,
            self.max_relative_difference,
            self.objective,
            self.closed_form_objective,
            if self.certified {
                "certified"
            } else {
                "not certified"
            },
            self.seconds
        )
    }
}

/// (a): a planted rank-5 matrix plus noise, fitted with the nuclear norm; the solution's
/// singular values against the data's soft-thresholded by λ.
pub fn lowrank(size: Size) -> Result<Run<LowrankNumbers>, String> {
    let (m, n) = match size {
        Size::Full => (100, 80),
        Size::Reduced => (40, 30),
    };
    // Noise of standard deviation 1 has singular values up to about √m + √n (19 at full
    // size), below the model's λ = 25; the planted ones are well above it.
    let (planted_rank, noise) = (5, 1.0);
    let mut synth = Synth::new(LOWRANK_SEED);
    let mut y = synth.low_rank(m, n, planted_rank, false) * 5.0;
    synth.add_noise(&mut y, noise);
    let sigma = linalg::singular_values(y.view()).ok_or("the SVD of Y failed")?;
    let (solved, seconds) = solve_model(LOWRANK_MODEL, None, &[], y.clone(), &[])?;
    let s = &solved.solution;
    let lambda = s.lambda;
    let closed: Vec<f64> = sigma.iter().map(|x| (x - lambda).max(0.0)).collect();
    let closed_form_rank = closed.iter().filter(|x| **x > 0.0).count();
    let closed_form_objective = sigma
        .iter()
        .map(|x| {
            if *x > lambda {
                lambda * x - 0.5 * lambda * lambda
            } else {
                0.5 * x * x
            }
        })
        .sum();
    let solved_values = product_singular_values(s.left(), s.right());
    let max_relative_difference = closed[..closed_form_rank]
        .iter()
        .enumerate()
        .map(|(k, c)| (solved_values.get(k).copied().unwrap_or(0.0) - c).abs() / c)
        .fold(0.0, f64::max);
    let numbers = LowrankNumbers {
        m,
        n,
        planted_rank,
        noise,
        lambda,
        rank: s.rank(),
        closed_form_rank,
        max_relative_difference,
        objective: s.objective,
        closed_form_objective,
        relative_gap: s.relative_gap,
        certified: certified(&solved),
        stop: s.stop.as_str().to_string(),
        iterations: s.iterations,
        seconds,
    };
    let shown = (3 * planted_rank).min(sigma.len());
    let svg = Figure::new(
        "(a) singular values of the nuclear-norm solution against the closed form S_λ(σ(Y))",
        1,
        640.0,
        260.0,
    )
    .with(
        Panel::new(
            &format!("singular values, λ = {lambda} (first {shown})"),
            "index k",
            Scale::Linear,
        )
        .with(Series::indexed(
            "σ_k(Y)",
            &sigma[..shown],
            Mark::Rings,
            PALETTE[6],
        ))
        .with(
            Series::indexed(
                "closed form max(σ_k − λ, 0)",
                &closed[..shown],
                Mark::Line,
                PALETTE[2],
            )
            .dashed(),
        )
        .with(Series::indexed(
            "hfc",
            &padded(&solved_values, shown),
            Mark::Dots,
            PALETTE[0],
        ))
        .with(
            Series::new(
                "λ",
                vec![(1.0, lambda), (shown as f64, lambda)],
                Mark::Line,
                PALETTE[1],
            )
            .dashed(),
        ),
    )
    .to_svg();
    Ok(Run {
        numbers,
        artifacts: Artifacts {
            svg,
            arrays: vec![("Y".into(), y)],
            tensors: Vec::new(),
            rerun: vec![rerun_command(
                "a_lowrank.hfm",
                None,
                &[],
                &[("Y", "Y")],
                "hfc",
            )],
        },
    })
}

/// The singular values above `1e-8·σ₁` (the others are zero to working precision and would
/// fill a log scale with rounding).
fn nonzero(values: &[f64]) -> Vec<f64> {
    values[..numerical_rank(values)].to_vec()
}

/// The first `len` values, zeros past the end.
fn padded(values: &[f64], len: usize) -> Vec<f64> {
    (0..len)
        .map(|k| values.get(k).copied().unwrap_or(0.0))
        .collect()
}

// ---------------------------------------------------------------------------------------
// (b) Dropout at a fixed size: fixed against adaptive rate.

/// The seed of (b)'s data.
pub const DROPOUT_SEED: u64 = 102;

/// One dropout run's numbers.
#[derive(Clone, Debug, Serialize)]
pub struct DropoutRun {
    /// F at the end.
    pub objective: f64,
    /// F after splitting every column in two (same map): below F at a fixed rate.
    pub split_objective: f64,
    /// The rank of U Vᵀ as a matrix (singular values above 1e-8·σ₁).
    pub product_rank: usize,
    /// ‖U Vᵀ − X*‖_F / ‖X*‖_F against the closed form of the problem it solves
    /// (λ₁/r at a fixed rate, λ₁ adaptive).
    pub relative_error: f64,
    /// `(max − min)/mean` of ‖Uᵢ‖‖Vᵢ‖.
    pub equalization_spread: f64,
    /// Why the solver stopped.
    pub stop: String,
    /// Seconds to check, lower, compile and solve.
    pub seconds: f64,
}

/// The numbers of (b).
#[derive(Clone, Debug, Serialize)]
pub struct DropoutNumbers {
    /// Rows of Y.
    pub m: usize,
    /// Columns of Y.
    pub n: usize,
    /// The planted rank.
    pub planted_rank: usize,
    /// The noise's standard deviation.
    pub noise: f64,
    /// The fixed size r.
    pub size: usize,
    /// The dropout rate p.
    pub p: f64,
    /// λ₁ = p/(1 − p).
    pub lambda1: f64,
    /// The fixed rate.
    pub fixed: DropoutRun,
    /// The rate growing with r.
    pub adaptive: DropoutRun,
    /// The adaptive problem's closed form S_τ(Y): its rank.
    pub closed_form_rank: usize,
    /// Its objective.
    pub closed_form_objective: f64,
}

impl Summary for DropoutNumbers {
    fn summary(&self) -> String {
        format!(
            "(b) {}x{}, r = {}, p = {:.4}: fixed rate F = {:.6e} (split F = {:.6e}, product rank {}); adaptive F = {:.6e} vs closed form {:.6e}, rank {} (closed form {}), relative error {:.2e}; {:.2} s + {:.2} s",
            self.m,
            self.n,
            self.size,
            self.p,
            self.fixed.objective,
            self.fixed.split_objective,
            self.fixed.product_rank,
            self.adaptive.objective,
            self.closed_form_objective,
            self.adaptive.product_rank,
            self.closed_form_rank,
            self.adaptive.relative_error,
            self.fixed.seconds,
            self.adaptive.seconds
        )
    }
}

/// The parameters of one dropout run at `size`: (p, size) as overrides.
fn dropout_overrides(p: f64, size: usize) -> [(&'static str, f64); 2] {
    [("p", p), ("size", size as f64)]
}

fn dropout_run(solved: &Solved, seconds: f64, closed_x: &Array2<f64>) -> (DropoutRun, Vec<f64>) {
    let s: &Solution = &solved.solution;
    let values = product_singular_values(s.left(), s.right());
    let x = linalg::gemm(s.left().view(), false, s.right().view(), true, 1.0);
    let summary = s.dropout.as_ref();
    (
        DropoutRun {
            objective: s.objective,
            split_objective: summary.map_or(f64::NAN, |d| d.split_objective),
            product_rank: numerical_rank(&values),
            relative_error: relative_frobenius(&x, closed_x),
            equalization_spread: equalization_spread(s.left(), s.right()),
            stop: s.stop.as_str().to_string(),
            seconds,
        },
        values,
    )
}

/// (b): dropout at a fixed size r on a rank-10 matrix plus noise, fixed rate against
/// adaptive rate, each against its closed form.
pub fn dropout(size: Size) -> Result<Run<DropoutNumbers>, String> {
    let (m, n, r) = match size {
        Size::Full => (100, 100, 160),
        Size::Reduced => (40, 40, 64),
    };
    let (planted_rank, noise) = (10, 0.3);
    // λ₁ = p/(1 − p) ≈ 0.026: the adaptive threshold τ = λ₁‖X*‖_* falls between the noise's
    // singular values and the signal's.
    let p = 0.025;
    let lambda1 = p / (1.0 - p);
    let mut synth = Synth::new(DROPOUT_SEED);
    let mut y = synth.low_rank(m, n, planted_rank, false) * 3.0;
    synth.add_noise(&mut y, noise);
    let overrides = dropout_overrides(p, r);
    let closed = dropout_closed_form(y.view(), lambda1).ok_or("the SVD of Y failed")?;
    let closed_fixed = dropout_closed_form(y.view(), lambda1 / r as f64).ok_or("SVD failed")?;
    let (fixed, fixed_seconds) = solve_model(
        DROPOUT_MODEL,
        Some("dropout_fixed"),
        &overrides,
        y.clone(),
        &[],
    )?;
    let (adaptive, adaptive_seconds) = solve_model(
        DROPOUT_MODEL,
        Some("dropout_adaptive"),
        &overrides,
        y.clone(),
        &[],
    )?;
    let (fixed_numbers, fixed_values) = dropout_run(&fixed, fixed_seconds, &closed_fixed.x);
    let (adaptive_numbers, adaptive_values) = dropout_run(&adaptive, adaptive_seconds, &closed.x);
    let sigma = linalg::singular_values(y.view()).ok_or("the SVD of Y failed")?;
    let numbers = DropoutNumbers {
        m,
        n,
        planted_rank,
        noise,
        size: r,
        p,
        lambda1,
        fixed: fixed_numbers,
        adaptive: adaptive_numbers,
        closed_form_rank: closed.rank,
        closed_form_objective: closed.objective,
    };
    let svg = Figure::new(
        "(b) dropout at a fixed size: singular values of U Vᵀ, fixed against adaptive rate",
        1,
        640.0,
        260.0,
    )
    .with(
        Panel::new(
            &format!("singular values of U Vᵀ, {m} × {n}, r = {r} columns (log scale)"),
            "index k",
            Scale::Log,
        )
        .with(Series::indexed("σ_k(Y)", &sigma, Mark::Rings, PALETTE[6]))
        .with(Series::indexed(
            "fixed rate",
            &nonzero(&fixed_values),
            Mark::Line,
            PALETTE[1],
        ))
        .with(Series::indexed(
            "adaptive rate",
            &nonzero(&adaptive_values),
            Mark::Dots,
            PALETTE[0],
        ))
        .with(
            Series::indexed(
                "closed form S_τ(Y)",
                &nonzero(&closed.singular_values.to_vec()),
                Mark::Line,
                PALETTE[2],
            )
            .dashed(),
        )
        .legend(Corner::BottomLeft),
    )
    .to_svg();
    let rerun = ["dropout_fixed", "dropout_adaptive"]
        .iter()
        .map(|model| {
            rerun_command(
                "b_dropout.hfm",
                Some(model),
                &overrides,
                &[("Y", "Y")],
                &format!("hfc_{model}"),
            )
        })
        .collect();
    Ok(Run {
        numbers,
        artifacts: Artifacts {
            svg,
            arrays: vec![("Y".into(), y)],
            tensors: Vec::new(),
            rerun,
        },
    })
}

// ---------------------------------------------------------------------------------------
// (c) Equalization.

/// The seed of (c)'s data.
pub const EQUALIZATION_SEED: u64 = 103;

/// One size's numbers in (c).
#[derive(Clone, Debug, Serialize)]
pub struct EqualizationRun {
    /// The number of columns r.
    pub size: usize,
    /// `(max − min)/mean` of ‖Uᵢ‖‖Vᵢ‖ (0 when equalized).
    pub equalization_spread: f64,
    /// ‖Uᵢ‖‖Vᵢ‖, largest first.
    pub column_products: Vec<f64>,
    /// ‖U Vᵀ‖_*/r: the common value of an equalized, nuclear-optimal factorization.
    pub nuclear_norm_over_r: f64,
    /// ‖U Vᵀ − S_τ(Y)‖_F / ‖S_τ(Y)‖_F.
    pub relative_error: f64,
    /// F at the end.
    pub objective: f64,
    /// Why the solver stopped.
    pub stop: String,
    /// Seconds to check, lower, compile and solve.
    pub seconds: f64,
}

/// The numbers of (c).
#[derive(Clone, Debug, Serialize)]
pub struct EqualizationNumbers {
    /// Rows of Y.
    pub m: usize,
    /// Columns of Y.
    pub n: usize,
    /// The planted rank.
    pub planted_rank: usize,
    /// The dropout rate p (adaptive).
    pub p: f64,
    /// The closed form's rank.
    pub closed_form_rank: usize,
    /// One entry per size r.
    pub runs: Vec<EqualizationRun>,
}

impl Summary for EqualizationNumbers {
    fn summary(&self) -> String {
        let runs: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                format!(
                    "r = {}: spread {:.2e}, ‖Uᵢ‖‖Vᵢ‖ = {:.6e} (‖X‖_*/r = {:.6e}), error to S_τ(Y) {:.2e}, {:.2} s",
                    r.size,
                    r.equalization_spread,
                    r.column_products.first().copied().unwrap_or(0.0),
                    r.nuclear_norm_over_r,
                    r.relative_error,
                    r.seconds
                )
            })
            .collect();
        format!(
            "(c) {}x{}, adaptive dropout p = {:.4}, closed-form rank {}: {}",
            self.m,
            self.n,
            self.p,
            self.closed_form_rank,
            runs.join("; ")
        )
    }
}

/// (c): adaptive dropout at r = 20 and r = 80 on a 120 × 80 matrix: every column carries the
/// same ‖Uᵢ‖‖Vᵢ‖ = ‖X‖_*/r, though X has rank about 8.
pub fn equalization(size: Size) -> Result<Run<EqualizationNumbers>, String> {
    let (m, n, sizes) = match size {
        Size::Full => (120, 80, [20, 80]),
        Size::Reduced => (48, 32, [8, 32]),
    };
    let planted_rank = 6;
    let p = 0.025;
    let lambda1 = p / (1.0 - p);
    let mut synth = Synth::new(EQUALIZATION_SEED);
    let mut y = synth.low_rank(m, n, planted_rank, false) * 3.0;
    synth.add_noise(&mut y, 0.3);
    let closed = dropout_closed_form(y.view(), lambda1).ok_or("the SVD of Y failed")?;
    let mut runs = Vec::new();
    let mut rerun = Vec::new();
    for r in sizes {
        let overrides = [("p", p), ("size", r as f64)];
        let (solved, seconds) = solve_model(EQUALIZATION_MODEL, None, &overrides, y.clone(), &[])?;
        let s = &solved.solution;
        let x = linalg::gemm(s.left().view(), false, s.right().view(), true, 1.0);
        let nuclear: f64 = product_singular_values(s.left(), s.right()).iter().sum();
        runs.push(EqualizationRun {
            size: r,
            equalization_spread: equalization_spread(s.left(), s.right()),
            column_products: column_products(s.left(), s.right()),
            nuclear_norm_over_r: nuclear / r as f64,
            relative_error: relative_frobenius(&x, &closed.x),
            objective: s.objective,
            stop: s.stop.as_str().to_string(),
            seconds,
        });
        rerun.push(rerun_command(
            "c_equalization.hfm",
            None,
            &overrides,
            &[("Y", "Y")],
            &format!("hfc_r{r}"),
        ));
    }
    // For contrast: the same X* factored by its balanced SVD (column i = √σᵢ pᵢ, √σᵢ qᵢ),
    // which is nuclear-optimal but not equalized: its products are the singular values.
    let widest = sizes[1];
    let svd_products = padded(&closed.singular_values.to_vec(), widest);
    let mut panel = Panel::new(
        "‖Uᵢ‖‖Vᵢ‖ per column i, largest first",
        "column i",
        Scale::Linear,
    )
    .with(
        Series::indexed(
            "balanced SVD of the same X (not equalized)",
            &svd_products,
            Mark::Line,
            PALETTE[6],
        )
        .dashed(),
    );
    for (k, run) in runs.iter().enumerate() {
        panel = panel.with(Series::indexed(
            &format!("adaptive dropout, r = {}", run.size),
            &run.column_products,
            Mark::LineDots,
            PALETTE[k],
        ));
    }
    let svg = Figure::new(
        "(c) adaptive dropout equalizes the columns: ‖Uᵢ‖‖Vᵢ‖ = ‖X‖_*/r",
        1,
        640.0,
        260.0,
    )
    .with(panel)
    .to_svg();
    let numbers = EqualizationNumbers {
        m,
        n,
        planted_rank,
        p,
        closed_form_rank: closed.rank,
        runs,
    };
    Ok(Run {
        numbers,
        artifacts: Artifacts {
            svg,
            arrays: vec![("Y".into(), y)],
            tensors: Vec::new(),
            rerun,
        },
    })
}

// ---------------------------------------------------------------------------------------
// (d) Calcium imaging.

/// The seed of (d)'s video: one where the solver stops at the planted number of neurons at
/// both sizes. On some other seeds the heuristic polar adds small or split components
/// besides the neurons (`examples/papers/README.md` has the survey); the overlap is the same.
pub const CALCIUM_SEED: u64 = 102;

/// A footprint's support, as the overlap measure reads it: the pixels where the footprint is
/// at least this fraction of its largest value.
pub const SUPPORT_THRESHOLD: f64 = 0.1;

/// The overlap measure of (d), in words (recorded in `numbers.json`).
pub const SUPPORT_OVERLAP_DEFINITION: &str = "Jaccard index |S ∩ Ŝ| / |S ∪ Ŝ| of the planted support S (the pixels where the planted footprint is positive) and the recovered support Ŝ (the pixels where the matched column of U is at least 0.1 times its largest entry); components are matched to neurons greedily, the pair of largest footprint cosine first";

/// The trace measure of (d), in words (recorded in `numbers.json`).
pub const TRACE_CORRELATION_DEFINITION: &str =
    "Pearson correlation of the planted trace and the matched column of V";

/// One planted neuron in (d) and the component matched to it.
#[derive(Clone, Debug, Serialize)]
pub struct NeuronMatch {
    /// The planted neuron.
    pub neuron: usize,
    /// The matched column of U and V (`None`: no component left to match).
    pub component: Option<usize>,
    /// The planted support, `[start, end)`.
    pub planted_support: (usize, usize),
    /// The recovered support: pixels where û ≥ [`SUPPORT_THRESHOLD`]·max û.
    pub recovered_support: Vec<usize>,
    /// The support overlap: Jaccard |S ∩ Ŝ| / |S ∪ Ŝ| of the planted support S and the
    /// recovered one Ŝ (1: the same pixels).
    pub support_overlap: f64,
    /// Jaccard of S and the exact support {û > 0} (no threshold).
    pub nonzero_support_overlap: f64,
    /// The cosine of the planted and recovered footprints.
    pub shape_cosine: f64,
    /// The Pearson correlation of the planted and recovered traces.
    pub trace_correlation: f64,
}

/// The numbers of (d).
#[derive(Clone, Debug, Serialize)]
pub struct CalciumNumbers {
    /// The video's generator settings.
    pub pixels: usize,
    /// Frames.
    pub frames: usize,
    /// Planted neurons.
    pub neurons: usize,
    /// The noise's standard deviation.
    pub noise: f64,
    /// The signal-to-noise ratio ‖Σ shapeᵢ traceᵢᵀ‖_F / ‖noise‖_F.
    pub snr: f64,
    /// The model's parameters: λ, a (ℓ1 of U), b (TV of U), c (ℓ1 of V).
    pub parameters: Vec<(String, f64)>,
    /// The size the solver found.
    pub rank: usize,
    /// Components matched to no neuron.
    pub extra_components: usize,
    /// Their share of Σⱼ ‖ûⱼ‖‖v̂ⱼ‖.
    pub extra_energy: f64,
    /// What `support_overlap` measures ([`SUPPORT_OVERLAP_DEFINITION`]).
    pub support_overlap_definition: &'static str,
    /// What `trace_correlation` measures ([`TRACE_CORRELATION_DEFINITION`]).
    pub trace_correlation_definition: &'static str,
    /// Per planted neuron.
    pub matches: Vec<NeuronMatch>,
    /// The smallest support overlap.
    pub min_support_overlap: f64,
    /// The smallest trace correlation.
    pub min_trace_correlation: f64,
    /// F at the end.
    pub objective: f64,
    /// Why the solver stopped (the polar of these gauges is heuristic: no certificate).
    pub stop: String,
    /// Seconds to check, lower, compile and solve.
    pub seconds: f64,
}

impl Summary for CalciumNumbers {
    fn summary(&self) -> String {
        format!(
            "(d) {} pixels x {} frames, {} neurons, SNR {:.2}: rank {} ({} extra, {:.1e} of the energy), support overlap (Jaccard) min {:.3}, trace correlation min {:.4}, stop {}, {:.2} s",
            self.pixels,
            self.frames,
            self.neurons,
            self.snr,
            self.rank,
            self.extra_components,
            self.extra_energy,
            self.min_support_overlap,
            self.min_trace_correlation,
            self.stop,
            self.seconds
        )
    }
}

/// The pixels of a footprint at or above `threshold`·max (all positive ones for 0).
fn support_of(column: ndarray::ArrayView1<'_, f64>, threshold: f64) -> Vec<usize> {
    let top = peak(column);
    if top <= 0.0 {
        return Vec::new();
    }
    column
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            if threshold > 0.0 {
                **v >= threshold * top
            } else {
                **v > 0.0
            }
        })
        .map(|(p, _)| p)
        .collect()
}

/// Jaccard index of a range and a sorted set of pixels.
fn jaccard(planted: &std::ops::Range<usize>, recovered: &[usize]) -> f64 {
    let common = recovered.iter().filter(|p| planted.contains(p)).count();
    let union = planted.len() + recovered.len() - common;
    if union == 0 {
        1.0
    } else {
        common as f64 / union as f64
    }
}

fn cosine(a: ndarray::ArrayView1<'_, f64>, b: ndarray::ArrayView1<'_, f64>) -> f64 {
    let norm = a.dot(&a).sqrt() * b.dot(&b).sqrt();
    if norm > 0.0 { a.dot(&b) / norm } else { 0.0 }
}

fn pearson(a: ndarray::ArrayView1<'_, f64>, b: ndarray::ArrayView1<'_, f64>) -> f64 {
    let centred = |x: ndarray::ArrayView1<'_, f64>| {
        let mean = x.mean().unwrap_or(0.0);
        x.mapv(|v| v - mean)
    };
    cosine(centred(a).view(), centred(b).view())
}

/// Greedy matching: repeatedly the (neuron, component) pair of largest footprint cosine among
/// those not yet matched. Returns each neuron's component.
fn match_components(planted: &Array2<f64>, recovered: &Array2<f64>) -> Vec<Option<usize>> {
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..planted.ncols() {
        for j in 0..recovered.ncols() {
            pairs.push((cosine(planted.column(i), recovered.column(j)), i, j));
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut of_neuron = vec![None; planted.ncols()];
    let mut taken = vec![false; recovered.ncols()];
    for (_, i, j) in pairs {
        if of_neuron[i].is_none() && !taken[j] {
            of_neuron[i] = Some(j);
            taken[j] = true;
        }
    }
    of_neuron
}

/// The calcium model's parameters, the model's defaults; recorded in the numbers.
const CALCIUM_PARAMETERS: [&str; 4] = ["lambda", "a", "b", "c"];

/// (d): a synthetic calcium video (pixels on a line, see [`Synth::calcium_video`]), factored
/// with (ℓ2 + ℓ1 + TV) on the nonnegative footprints and (ℓ2 + ℓ1) on the nonnegative
/// traces; recovered footprints and traces against the planted ones.
pub fn calcium(size: Size) -> Result<Run<CalciumNumbers>, String> {
    calcium_seeded(size, CALCIUM_SEED)
}

/// [`calcium`] on the video of another seed (the README's survey over seeds).
pub fn calcium_seeded(size: Size, seed: u64) -> Result<Run<CalciumNumbers>, String> {
    let spec = match size {
        Size::Full => CalciumSpec {
            pixels: 200,
            frames: 300,
            neurons: 6,
            width: (12, 22),
            spike_rate: 0.03,
            decay: 6.0,
            noise: 0.1,
        },
        Size::Reduced => CalciumSpec {
            pixels: 100,
            frames: 200,
            neurons: 4,
            width: (10, 18),
            spike_rate: 0.04,
            decay: 6.0,
            noise: 0.1,
        },
    };
    let video = Synth::new(seed).calcium_video(&spec);
    let clean = linalg::gemm(video.shapes.view(), false, video.traces.view(), true, 1.0);
    let frobenius = |a: &Array2<f64>| a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let snr = frobenius(&clean) / frobenius(&(&video.y - &clean)).max(f64::MIN_POSITIVE);
    let (solved, seconds) = solve_model(CALCIUM_MODEL, None, &[], video.y.clone(), &[])?;
    let s = &solved.solution;
    let (u, v) = (s.left(), s.right());
    let of_neuron = match_components(&video.shapes, u);
    let mut matches = Vec::new();
    for (i, component) in of_neuron.iter().enumerate() {
        let planted = &video.supports[i];
        let (recovered_support, overlap, nonzero_overlap, shape_cosine, trace_correlation) =
            match component {
                Some(j) => {
                    let support = support_of(u.column(*j), SUPPORT_THRESHOLD);
                    let overlap = jaccard(planted, &support);
                    let nonzero = jaccard(planted, &support_of(u.column(*j), 0.0));
                    (
                        support,
                        overlap,
                        nonzero,
                        cosine(video.shapes.column(i), u.column(*j)),
                        pearson(video.traces.column(i), v.column(*j)),
                    )
                }
                None => (Vec::new(), 0.0, 0.0, 0.0, 0.0),
            };
        matches.push(NeuronMatch {
            neuron: i,
            component: *component,
            planted_support: (planted.start, planted.end),
            recovered_support,
            support_overlap: overlap,
            nonzero_support_overlap: nonzero_overlap,
            shape_cosine,
            trace_correlation,
        });
    }
    let products = {
        let norm = |m: &Array2<f64>| m.map_axis(Axis(0), |c| c.dot(&c).sqrt());
        norm(u) * norm(v)
    };
    let total: f64 = products.sum();
    let extra: Vec<usize> = (0..u.ncols())
        .filter(|j| !of_neuron.contains(&Some(*j)))
        .collect();
    let extra_energy = if total > 0.0 {
        extra.iter().fold(0.0, |sum, j| sum + products[*j]) / total
    } else {
        0.0
    };
    let parameters = model_parameters(CALCIUM_MODEL, &CALCIUM_PARAMETERS)?;
    let numbers = CalciumNumbers {
        pixels: spec.pixels,
        frames: spec.frames,
        neurons: spec.neurons,
        noise: spec.noise,
        snr,
        parameters,
        rank: s.rank(),
        extra_components: extra.len(),
        extra_energy,
        min_support_overlap: matches
            .iter()
            .map(|m| m.support_overlap)
            .fold(f64::INFINITY, f64::min),
        min_trace_correlation: matches
            .iter()
            .map(|m| m.trace_correlation)
            .fold(f64::INFINITY, f64::min),
        support_overlap_definition: SUPPORT_OVERLAP_DEFINITION,
        trace_correlation_definition: TRACE_CORRELATION_DEFINITION,
        matches,
        objective: s.objective,
        stop: s.stop.as_str().to_string(),
        seconds,
    };
    let svg = calcium_plot(&video, u, v, &of_neuron, &numbers);
    Ok(Run {
        numbers,
        artifacts: Artifacts {
            svg,
            arrays: vec![
                ("Y".into(), video.y),
                ("planted_shapes".into(), video.shapes),
                ("planted_traces".into(), video.traces),
                ("planted_spikes".into(), video.spikes),
            ],
            tensors: Vec::new(),
            rerun: vec![rerun_command(
                "d_calcium.hfm",
                None,
                &[],
                &[("Y", "Y")],
                "hfc",
            )],
        },
    })
}

/// The values of parameters `names` of the first model of `text` (its defaults).
fn model_parameters(text: &str, names: &[&str]) -> Result<Vec<(String, f64)>, String> {
    let checked = hfc::check_with("model.hfm", text, &mut crate::StdLoader, &[]);
    let model = checked
        .models
        .first()
        .and_then(|m| m.ir.as_ref())
        .ok_or("the model does not check")?;
    names
        .iter()
        .map(|name| {
            model
                .params
                .iter()
                .find(|(n, _)| n == name)
                .cloned()
                .ok_or_else(|| format!("no parameter `{name}`"))
        })
        .collect()
}

/// The largest entry of a nonnegative vector (0 for none).
fn peak(column: ndarray::ArrayView1<'_, f64>) -> f64 {
    column.iter().copied().fold(0.0, f64::max)
}

/// One row per neuron: the footprint (planted dashed, recovered solid) and the trace, the
/// recovered pair rescaled so the footprint's peak is the planted one's (û s, v̂ / s: the
/// same rank-one term).
fn calcium_plot(
    video: &hfc_runtime::synth::CalciumVideo,
    u: &Array2<f64>,
    v: &Array2<f64>,
    of_neuron: &[Option<usize>],
    numbers: &CalciumNumbers,
) -> String {
    let mut figure = Figure::new(
        "(d) calcium imaging: recovered footprints and traces against the planted ones",
        2,
        520.0,
        110.0,
    );
    let mean_frame: Array1<f64> = video.y.mean_axis(Axis(1)).unwrap_or_default();
    let recovered_mean: Array1<f64> = if u.ncols() > 0 {
        u.dot(&v.mean_axis(Axis(0)).unwrap_or_default())
    } else {
        Array1::zeros(video.y.nrows())
    };
    let indexed = |values: &[f64]| -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(k, v)| (k as f64, *v))
            .collect()
    };
    figure = figure.with(
        Panel::new("mean over frames of the video", "pixel", Scale::Linear)
            .with(Series::new(
                "Y",
                indexed(&mean_frame.to_vec()),
                Mark::Line,
                PALETTE[6],
            ))
            .with(Series::new(
                "U V̄ (hfc)",
                indexed(&recovered_mean.to_vec()),
                Mark::Line,
                PALETTE[0],
            )),
    );
    // Each recovered footprint rescaled to its planted peak (the split of a rank-one term's
    // scale between û and v̂ is arbitrary); unmatched components to a peak of 1.
    let mut overview = Panel::new(
        &format!(
            "footprints: {} planted, {} recovered (scaled to planted peaks)",
            video.shapes.ncols(),
            u.ncols()
        ),
        "pixel",
        Scale::Linear,
    )
    .with(
        Series::new(
            "planted",
            indexed(&video.shapes.sum_axis(Axis(1)).to_vec()),
            Mark::Line,
            PALETTE[6],
        )
        .dashed(),
    );
    for j in 0..u.ncols() {
        let target = of_neuron
            .iter()
            .position(|c| *c == Some(j))
            .map_or(1.0, |i| peak(video.shapes.column(i)));
        let scale = target / peak(u.column(j)).max(f64::MIN_POSITIVE);
        overview = overview.with(Series::new(
            if j == 0 { "hfc" } else { "" },
            indexed(&u.column(j).mapv(|x| x * scale).to_vec()),
            Mark::Line,
            PALETTE[0],
        ));
    }
    figure = figure.with(overview);
    for (i, component) in of_neuron.iter().enumerate() {
        let planted_shape = video.shapes.column(i).to_vec();
        let planted_trace = video.traces.column(i).to_vec();
        let (shape, trace) = match component {
            Some(j) => {
                let scale =
                    peak(video.shapes.column(i)) / peak(u.column(*j)).max(f64::MIN_POSITIVE);
                (
                    u.column(*j).mapv(|x| x * scale).to_vec(),
                    v.column(*j).mapv(|x| x / scale).to_vec(),
                )
            }
            None => (Vec::new(), Vec::new()),
        };
        let found = &numbers.matches[i];
        figure = figure
            .with(
                Panel::new(
                    &format!(
                        "neuron {i}: footprint, Jaccard {:.3}",
                        found.support_overlap
                    ),
                    "pixel",
                    Scale::Linear,
                )
                .with(
                    Series::new("planted", indexed(&planted_shape), Mark::Line, PALETTE[6])
                        .dashed(),
                )
                .with(Series::new("hfc", indexed(&shape), Mark::Line, PALETTE[0])),
            )
            .with(
                Panel::new(
                    &format!(
                        "neuron {i}: trace, correlation {:.4}",
                        found.trace_correlation
                    ),
                    "frame",
                    Scale::Linear,
                )
                .with(
                    Series::new("planted", indexed(&planted_trace), Mark::Line, PALETTE[6])
                        .dashed(),
                )
                .with(Series::new("hfc", indexed(&trace), Mark::Line, PALETTE[1])),
            );
    }
    figure.to_svg()
}

// ---------------------------------------------------------------------------------------
// (e) The ReLU teacher.

/// The seed of (e)'s data: one where the solver stops at the teacher's three units, with a
/// certificate, at both sizes (11 of the seeds 100–111 stop at three units, not all
/// certified), see `examples/papers/README.md`.
pub const RELU_SEED: u64 = 102;

/// One planted neuron of (e) and the hidden unit matched to it.
#[derive(Clone, Debug, Serialize)]
pub struct UnitMatch {
    /// The planted direction's angle (radians).
    pub planted_angle: f64,
    /// The planted outer weight (‖w₁‖ = 1).
    pub planted_weight: f64,
    /// The matched unit's angle of W1's column.
    pub angle: f64,
    /// Its outer weight times ‖W1's column‖ (invariant to the rescaling u·s, v/s).
    pub weight: f64,
}

/// The numbers of (e).
#[derive(Clone, Debug, Serialize)]
pub struct ReluNumbers {
    /// Training points.
    pub points: usize,
    /// λ (the model's).
    pub lambda: f64,
    /// The planted number of neurons.
    pub planted_rank: usize,
    /// The number of hidden units the solver found.
    pub rank: usize,
    /// ½‖Y − f(X)‖² at the end.
    pub loss: f64,
    /// F at the end.
    pub objective: f64,
    /// The duality gap relative to F.
    pub relative_gap: Option<f64>,
    /// Whether the run stopped with an exact certificate (d = 2: exact enumeration).
    pub certified: bool,
    /// Why the solver stopped.
    pub stop: String,
    /// Descent iterations.
    pub iterations: u64,
    /// Planted neurons and their matched units (greedy by angle).
    pub units: Vec<UnitMatch>,
    /// The largest angle between a planted direction and its unit (radians).
    pub max_angle_error: f64,
    /// Seconds to check, lower, compile and solve.
    pub seconds: f64,
}

impl Summary for ReluNumbers {
    fn summary(&self) -> String {
        format!(
            "(e) ReLU teacher, {} points, λ = {}: rank {} (planted {}), loss {:.3e}, largest angle error {:.2e} rad, relative gap {}, {}, {:.2} s",
            self.points,
            self.lambda,
            self.rank,
            self.planted_rank,
            self.loss,
            self.max_angle_error,
            self.relative_gap
                .map_or("none".to_string(), |g| format!("{g:.2e}")),
            if self.certified {
                "certified"
            } else {
                "not certified"
            },
            self.seconds
        )
    }
}

/// The angle between two angles, in [0, π].
fn angle_between(a: f64, b: f64) -> f64 {
    let d = (a - b).rem_euclid(std::f64::consts::TAU);
    d.min(std::f64::consts::TAU - d)
}

/// (e), ReLU half: a two-layer ReLU network grown from rank 0 on a planted three-neuron
/// teacher in the plane; the solver's rank and its units against the teacher's.
pub fn relu_teacher(size: Size) -> Result<Run<ReluNumbers>, String> {
    relu_teacher_seeded(size, RELU_SEED)
}

/// [`relu_teacher`] on the data of another seed (the README's survey over seeds).
pub fn relu_teacher_seeded(size: Size, seed: u64) -> Result<Run<ReluNumbers>, String> {
    let points = match size {
        Size::Full => 400,
        Size::Reduced => 120,
    };
    let (x, y, directions) = Synth::new(seed).relu_teacher(points, &RELU_TEACHER);
    let (solved, seconds) =
        solve_model(RELU_MODEL, None, &[], y.clone(), std::slice::from_ref(&x))?;
    let s = &solved.solution;
    let (w1, w2) = (s.left(), s.right());
    // The teacher lives in the plane with one output: W1 is 2 × r and W2 is 1 × r.
    if w1.nrows() != 2 || w2.nrows() != 1 {
        return Err(format!(
            "expected factors of 2 and 1 rows, found {} and {}",
            w1.nrows(),
            w2.nrows()
        ));
    }
    let angles: Vec<f64> = (0..w1.ncols())
        .map(|k| w1[[1, k]].atan2(w1[[0, k]]))
        .collect();
    let weights: Vec<f64> = (0..w1.ncols())
        .map(|k| w2[[0, k]] * w1.column(k).dot(&w1.column(k)).sqrt())
        .collect();
    let planted: Vec<(f64, f64)> = (0..directions.ncols())
        .map(|k| {
            (
                directions[[1, k]].atan2(directions[[0, k]]),
                RELU_TEACHER[k].1,
            )
        })
        .collect();
    // Greedy by angle: the closest (planted, unit) pair first.
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for (i, (a, _)) in planted.iter().enumerate() {
        for (j, b) in angles.iter().enumerate() {
            pairs.push((angle_between(*a, *b), i, j));
        }
    }
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut unit_of = vec![None; planted.len()];
    let mut taken = vec![false; angles.len()];
    for (_, i, j) in pairs {
        if unit_of[i].is_none() && !taken[j] {
            unit_of[i] = Some(j);
            taken[j] = true;
        }
    }
    let units: Vec<UnitMatch> = planted
        .iter()
        .zip(&unit_of)
        .map(|(&(planted_angle, planted_weight), unit)| UnitMatch {
            planted_angle,
            planted_weight,
            angle: unit.map_or(f64::NAN, |j| angles[j]),
            weight: unit.map_or(f64::NAN, |j| weights[j]),
        })
        .collect();
    let max_angle_error = units
        .iter()
        .map(|u| {
            if u.angle.is_nan() {
                std::f64::consts::PI
            } else {
                angle_between(u.planted_angle, u.angle)
            }
        })
        .fold(0.0, f64::max);
    let numbers = ReluNumbers {
        points,
        lambda: s.lambda,
        planted_rank: RELU_TEACHER.len(),
        rank: s.rank(),
        loss: s.loss,
        objective: s.objective,
        relative_gap: s.relative_gap,
        certified: certified(&solved),
        stop: s.stop.as_str().to_string(),
        iterations: s.iterations,
        units,
        max_angle_error,
        seconds,
    };
    // The fit: prediction against target, and the units against the teacher's neurons.
    let hidden = linalg::gemm(x.view(), false, w1.view(), false, 1.0).mapv(|a| a.max(0.0));
    let prediction = linalg::gemm(hidden.view(), false, w2.view(), true, 1.0);
    let fit: Vec<(f64, f64)> = y
        .column(0)
        .iter()
        .zip(prediction.column(0))
        .map(|(t, p)| (*t, *p))
        .collect();
    let (lo, hi) = fit
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (t, _)| {
            (lo.min(*t), hi.max(*t))
        });
    let svg = Figure::new(
        "(e) a planted three-neuron ReLU teacher and the network hfc grows",
        2,
        460.0,
        240.0,
    )
    .with(
        Panel::new(
            "hidden units: outer weight ‖w₁‖·w₂ against angle of w₁",
            "angle (rad)",
            Scale::Linear,
        )
        .with(Series::new(
            "teacher",
            planted.clone(),
            Mark::Rings,
            PALETTE[6],
        ))
        .with(Series::new(
            "hfc",
            angles
                .iter()
                .copied()
                .zip(weights.iter().copied())
                .collect(),
            Mark::Dots,
            PALETTE[0],
        )),
    )
    .with(
        Panel::new(
            &format!("prediction against target, loss {:.2e}", numbers.loss),
            "target y",
            Scale::Linear,
        )
        .with(Series::new("y = ŷ", vec![(lo, lo), (hi, hi)], Mark::Line, PALETTE[6]).dashed())
        .with(Series::new("hfc", fit, Mark::Dots, PALETTE[0]))
        .legend(Corner::BottomRight),
    )
    .to_svg();
    Ok(Run {
        numbers,
        artifacts: Artifacts {
            svg,
            arrays: vec![("X".into(), x), ("Y".into(), y)],
            tensors: Vec::new(),
            rerun: vec![rerun_command(
                "e_relu_teacher.hfm",
                None,
                &[],
                &[("X", "X"), ("Y", "Y")],
                "hfc",
            )],
        },
    })
}

// ---------------------------------------------------------------------------------------
// (e) A planted CP tensor.

/// The seed of (e)'s tensor.
pub const CP_SEED: u64 = 105;

/// One planted CP component of (e) and the recovered column matched to it.
#[derive(Clone, Debug, Serialize)]
pub struct ComponentMatch {
    /// The planted component.
    pub planted: usize,
    /// The matched column (`None`: no column left to match).
    pub component: Option<usize>,
    /// Its weight Πₖ ‖aᵏᵢ‖ (the rank-one term's Frobenius norm).
    pub planted_weight: f64,
    /// The matched column's weight Πₖ ‖âᵏⱼ‖.
    pub weight: f64,
    /// The congruence Πₖ cos(aᵏᵢ, âᵏⱼ): 1 for the same rank-one term up to scale.
    pub congruence: f64,
}

/// The numbers of (e), CP half.
#[derive(Clone, Debug, Serialize)]
pub struct CpNumbers {
    /// The tensor's shape.
    pub shape: Vec<usize>,
    /// The planted CP rank.
    pub planted_rank: usize,
    /// λ (the model's).
    pub lambda: f64,
    /// λ_max: the polar value at 0 (the power method's; the smallest λ whose solution is 0).
    pub lambda_max: f64,
    /// The rank the solver found.
    pub rank: usize,
    /// ‖Σᵢ âᵢ ⊗ b̂ᵢ ⊗ ĉᵢ − T‖_F / ‖T‖_F against the planted tensor.
    pub relative_error: f64,
    /// Planted components and their matched columns (greedy by congruence).
    pub components: Vec<ComponentMatch>,
    /// The smallest congruence of a matched pair.
    pub min_congruence: f64,
    /// F at the end.
    pub objective: f64,
    /// The polar value at the end, comparable with λ.
    pub polar_value: f64,
    /// Whether the run stopped with an exact certificate: never for CP (the power method is
    /// a heuristic polar solver; `stop = "optimal"` means the polar test passed).
    pub certified: bool,
    /// Why the solver stopped.
    pub stop: String,
    /// Descent iterations.
    pub iterations: u64,
    /// Seconds to check, lower, compile and solve.
    pub seconds: f64,
}

impl Summary for CpNumbers {
    fn summary(&self) -> String {
        let shape: Vec<String> = self.shape.iter().map(usize::to_string).collect();
        format!(
            "(e) CP tensor {}, planted rank {}, λ = {} ({:.1e} λ_max): rank {}, relative error {:.2e}, min congruence {:.8}, stop {} ({}), {} iterations, {:.2} s",
            shape.join("x"),
            self.planted_rank,
            self.lambda,
            self.lambda / self.lambda_max,
            self.rank,
            self.relative_error,
            self.min_congruence,
            self.stop,
            if self.certified {
                "certified"
            } else {
                "heuristic polar: not certified"
            },
            self.iterations,
            self.seconds
        )
    }
}

/// Πₖ ‖column i of factor k‖ per column.
fn cp_weights(factors: &[Array2<f64>]) -> Vec<f64> {
    let rank = factors.first().map_or(0, Array2::ncols);
    (0..rank)
        .map(|i| {
            factors
                .iter()
                .map(|a| a.column(i).dot(&a.column(i)).sqrt())
                .product()
        })
        .collect()
}

/// Greedy matching of planted and recovered CP components: repeatedly the pair of largest
/// congruence Πₖ cos(aᵏᵢ, âᵏⱼ) among those not yet matched. Returns (each planted
/// component's column, its congruence).
fn match_cp(planted: &[Array2<f64>], recovered: &[Array2<f64>]) -> Vec<(Option<usize>, f64)> {
    let (p, r) = (
        planted.first().map_or(0, Array2::ncols),
        recovered.first().map_or(0, Array2::ncols),
    );
    let mut pairs: Vec<(f64, usize, usize)> = Vec::new();
    for i in 0..p {
        for j in 0..r {
            let congruence = planted
                .iter()
                .zip(recovered)
                .map(|(a, b)| cosine(a.column(i), b.column(j)))
                .product();
            pairs.push((congruence, i, j));
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut of_planted = vec![(None, 0.0); p];
    let mut taken = vec![false; r];
    for (congruence, i, j) in pairs {
        if of_planted[i].0.is_none() && !taken[j] {
            of_planted[i] = (Some(j), congruence);
            taken[j] = true;
        }
    }
    of_planted
}

/// (e), CP half: a planted rank-4 tensor (standard normal factors, no noise) fitted with the
/// projective tensor norm from rank 0; the rank the solver grows to, the reconstruction
/// against the planted tensor, and the recovered components against the planted ones.
pub fn cp_tensor(size: Size) -> Result<Run<CpNumbers>, String> {
    let (shape, planted_rank): (Vec<usize>, usize) = match size {
        Size::Full => (vec![40, 30, 20], 4),
        Size::Reduced => (vec![20, 15, 10], 3),
    };
    let (t, planted) = Synth::new(CP_SEED).cp_tensor(&shape, planted_rank);
    let clock = Instant::now();
    let (lowered, options) = lower_model(CP_MODEL, None, &[])?;
    let solved = solve_tensor_lowered(BackendKind::Jit, lowered, &t, &options)?;
    let seconds = clock.elapsed().as_secs_f64();
    let s = &solved.solution;
    let x = linalg::cp_compose(&s.factors, &shape);
    let diff: f64 = x.iter().zip(&t).map(|(a, b)| (a - b).powi(2)).sum();
    let norm: f64 = t.iter().map(|v| v * v).sum();
    let relative_error = (diff / norm.max(f64::MIN_POSITIVE)).sqrt();
    let planted_weights = cp_weights(&planted);
    let weights = cp_weights(&s.factors);
    let components: Vec<ComponentMatch> = match_cp(&planted, &s.factors)
        .into_iter()
        .enumerate()
        .map(|(i, (component, congruence))| ComponentMatch {
            planted: i,
            component,
            planted_weight: planted_weights[i],
            weight: component.map_or(0.0, |j| weights[j]),
            congruence,
        })
        .collect();
    let min_congruence = components
        .iter()
        .map(|c| c.congruence)
        .fold(f64::INFINITY, f64::min);
    let numbers = CpNumbers {
        shape: shape.clone(),
        planted_rank,
        lambda: s.lambda,
        lambda_max: s.lambda_max,
        rank: s.rank(),
        relative_error,
        components,
        min_congruence,
        objective: s.objective,
        polar_value: s.polar_value,
        certified: certified(&solved),
        stop: s.stop.as_str().to_string(),
        iterations: s.iterations,
        seconds,
    };
    let svg = cp_plot(&numbers, &weights, &s.history);
    Ok(Run {
        numbers,
        artifacts: Artifacts {
            svg,
            arrays: ["A", "B", "C"]
                .iter()
                .zip(planted)
                .map(|(name, a)| (format!("planted_{name}"), a))
                .collect(),
            tensors: vec![("T".into(), t)],
            rerun: vec![rerun_command(
                "e_cp_tensor.hfm",
                None,
                &[],
                &[("T", "T")],
                "hfc",
            )],
        },
    })
}

/// The planted components' weights against the recovered ones, and the run's objective and
/// rank per iteration.
fn cp_plot(numbers: &CpNumbers, weights: &[f64], history: &[hfc_runtime::solve::Record]) -> String {
    let mut planted: Vec<f64> = numbers
        .components
        .iter()
        .map(|c| c.planted_weight)
        .collect();
    planted.sort_by(|a, b| b.total_cmp(a));
    let mut recovered = weights.to_vec();
    recovered.sort_by(|a, b| b.total_cmp(a));
    let best = history
        .iter()
        .map(|r| r.objective)
        .fold(f64::INFINITY, f64::min);
    let excess: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.iteration as f64, r.objective - best))
        .filter(|(_, y)| *y > 0.0)
        .collect();
    let rank: Vec<(f64, f64)> = history
        .iter()
        .map(|r| (r.iteration as f64, r.rank as f64))
        .collect();
    let shape: Vec<String> = numbers.shape.iter().map(usize::to_string).collect();
    Figure::new(
        &format!(
            "(e) a planted CP tensor of rank {} ({}) and the factorization hfc grows",
            numbers.planted_rank,
            shape.join(" × ")
        ),
        3,
        330.0,
        240.0,
    )
    .with(
        Panel::new(
            &format!("weights Πₖ‖aᵏᵢ‖, error {:.1e}", numbers.relative_error),
            "component i (largest first)",
            Scale::Linear,
        )
        .with(Series::indexed(
            "planted",
            &planted,
            Mark::Rings,
            PALETTE[6],
        ))
        .with(Series::indexed("hfc", &recovered, Mark::Dots, PALETTE[0])),
    )
    .with(
        Panel::new("objective F − min F (log scale)", "iteration", Scale::Log).with(Series::new(
            "",
            excess,
            Mark::Line,
            PALETTE[0],
        )),
    )
    .with(
        Panel::new(
            &format!("rank r (planted {})", numbers.planted_rank),
            "iteration",
            Scale::Linear,
        )
        .with(Series::new("", rank, Mark::Steps, PALETTE[0])),
    )
    .to_svg()
}
