//! Every back end finds the same solution: each standard-library model and each example that
//! lowers is solved by the interpreter and by the JIT from the same seed; the objectives agree
//! to relative 1e-10 and the ranks, stop reasons and iteration counts are equal.

use hfc_runtime::Value;
use hfc_runtime::synth::Synth;
use hfc_tests::{BackendKind, lower_text, options, repo_dir, solve_tensor, solve_with_inputs};

/// Models that do not lower yet; when one starts lowering, this list must shrink and the
/// model is compared like the rest.
const NOT_LOWERED: &[&str] = &[];

struct Case {
    name: String,
    text: String,
    data: Value,
    /// Other data the map reads (a network's input).
    inputs: Vec<ndarray::Array2<f64>>,
    /// A CP model's tensor (then `data` is unused).
    tensor: Option<ndarray::ArrayD<f64>>,
}

fn synthetic(observed: bool, seed: u64) -> Value {
    let mut synth = Synth::new(seed);
    let mut y = synth.low_rank(30, 20, 3, true);
    synth.add_noise(&mut y, 0.1);
    if observed {
        Value::Observed(synth.observe(&y, 0.5))
    } else {
        Value::Matrix(y)
    }
}

fn cases() -> Vec<Case> {
    let mut out = Vec::new();
    let mut not_lowered = Vec::new();
    for (k, (name, text)) in hfc_stdlib::FILES.iter().enumerate() {
        if *name == "norms.hfm" {
            continue;
        }
        match lower_text(text, &[]) {
            Ok(lowered) => out.push(Case {
                name: format!("std/{name}"),
                text: text.to_string(),
                data: synthetic(lowered.observed, k as u64),
                // A network's input: 30 points in 3 dimensions.
                inputs: lowered
                    .inputs
                    .iter()
                    .map(|_| Synth::new(k as u64 + 100).normal(30, 3))
                    .collect(),
                // A rank-2 12 × 10 × 8 tensor with noise.
                tensor: lowered.tensor.is_some().then(|| {
                    let mut synth = Synth::new(k as u64 + 200);
                    let (mut t, _) = synth.cp_tensor(&[12, 10, 8], 2);
                    let noise = synth.normal(12, 80);
                    t.iter_mut()
                        .zip(noise.iter())
                        .for_each(|(x, e)| *x += 0.05 * e);
                    t
                }),
            }),
            Err(e) => {
                assert!(
                    e.contains("cannot run this model yet"),
                    "std/{name} fails to lower with an unexpected error: {e}"
                );
                not_lowered.push(*name);
            }
        }
    }
    assert_eq!(
        not_lowered, NOT_LOWERED,
        "the set of models that do not lower changed"
    );
    for (example, data, observed) in [
        ("lowrank.hfm", "Y.npy", false),
        ("completion.hfm", "ratings.mtx", true),
        ("nmf.hfm", "faces.npy", false),
    ] {
        let dir = repo_dir().join("examples");
        let text = std::fs::read_to_string(dir.join(example)).expect("example exists");
        let data = hfc_runtime::data::read(&dir.join(data), "Y", observed).expect("data reads");
        out.push(Case {
            name: format!("examples/{example}"),
            text,
            data,
            inputs: Vec::new(),
            tensor: None,
        });
    }
    out
}

#[test]
fn jit_and_interpreter_find_the_same_solution() {
    let mut opts = options(1e-8);
    opts.max_iter = 3000;
    opts.seed = 7;
    for case in cases() {
        let solve = |kind| {
            match &case.tensor {
                Some(t) => solve_tensor(kind, &case.text, &[], t, &opts),
                None => solve_with_inputs(
                    kind,
                    &case.text,
                    &[],
                    case.data.clone(),
                    &case.inputs,
                    &opts,
                ),
            }
            .unwrap_or_else(|e| panic!("{} on {kind:?}: {e}", case.name))
            .solution
        };
        let interp = solve(BackendKind::Interp);
        let jit = solve(BackendKind::Jit);
        let relative =
            (interp.objective - jit.objective).abs() / interp.objective.abs().max(1e-300);
        assert!(
            relative <= 1e-10,
            "{}: objective {} (interp) vs {} (jit), relative {relative:e}",
            case.name,
            interp.objective,
            jit.objective
        );
        assert_eq!(interp.rank(), jit.rank(), "{}: rank", case.name);
        assert_eq!(interp.stop, jit.stop, "{}: stop", case.name);
        assert!(
            interp.objective.is_finite() && interp.iterations > 0,
            "{}",
            case.name
        );
    }
}

/// The Cranelift IR generated for the standard low-rank model, as `hfc emit clif` prints it
/// (bless with `UPDATE_EXPECT=1`).
#[test]
fn clif_of_the_lowrank_model_is_stable() {
    let text = hfc_stdlib::file("lowrank.hfm").expect("stdlib model");
    let lowered = lower_text(text, &[]).expect("lowers");
    let clif = hfc_runtime::cpu::emit_clif(&lowered.program).expect("translates");
    hfc_tests::golden(
        &hfc_tests::crate_dir().join("snapshots/lowrank.clif"),
        &clif,
    );
}
