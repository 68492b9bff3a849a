//! The papers' experiments (`examples/papers/`) at reduced size, asserting what each paper
//! shows: the numbers `paper-examples --reduced` prints.

use hfc_tests::papers::{self, Size};
use hfc_tests::repo_dir;

#[test]
fn every_papers_model_checks_and_only_the_fixed_rate_warns() {
    let dir = repo_dir().join("examples/papers");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("examples/papers exists")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".hfm"))
        .collect();
    on_disk.sort();
    let listed: Vec<&str> = papers::MODELS.iter().map(|(name, _)| *name).collect();
    assert_eq!(on_disk, listed, "papers::MODELS lists the folder");
    for (name, text) in papers::MODELS {
        let checked = hfc::check(name, text, &mut hfc_tests::StdLoader);
        let codes: Vec<&str> = checked.diagnostics.iter().map(|d| d.code()).collect();
        if *name == "b_dropout.hfm" {
            // The fixed rate's degree 4 on a map of degree 2 is what (b) demonstrates.
            assert_eq!(codes, vec!["hfc::degree::mismatch"], "{name}");
        } else {
            assert!(codes.is_empty(), "{name}: {codes:?}");
        }
        assert!(checked.models.iter().all(|m| m.induced.is_some()), "{name}");
        assert!(text.starts_with("// ("), "{name} starts with its letter");
    }
}

#[test]
fn a_nuclear_norm_singular_values_are_the_soft_thresholded_data() {
    let run = papers::lowrank(Size::Reduced).expect("runs");
    let n = &run.numbers;
    assert!(n.certified, "{n:?}");
    assert_eq!(n.rank, n.closed_form_rank);
    assert_eq!(
        n.rank, n.planted_rank,
        "λ cuts the noise and keeps the signal"
    );
    assert!(
        n.max_relative_difference <= 1e-9,
        "singular values {:e} from the closed form",
        n.max_relative_difference
    );
    assert!((n.objective - n.closed_form_objective).abs() <= 1e-9 * n.closed_form_objective);
    assert!(run.artifacts.svg.contains("closed form"));
}

#[test]
fn b_fixed_rate_dropout_does_not_limit_the_size_and_adaptive_is_the_closed_form() {
    let run = papers::dropout(Size::Reduced).expect("runs");
    let n = &run.numbers;
    // A fixed rate: splitting every column lowers F, so F does not bound the size, and the
    // product keeps nearly all of Y (its threshold is λ₁/r).
    assert!(
        n.fixed.split_objective < n.fixed.objective * (1.0 - 1e-6),
        "split {} vs F {}",
        n.fixed.split_objective,
        n.fixed.objective
    );
    assert!(n.fixed.product_rank > n.closed_form_rank);
    assert!(
        n.fixed.relative_error <= 1e-6,
        "{:e}",
        n.fixed.relative_error
    );
    // The adaptive rate reaches S_τ(Y) with r columns, equalized.
    assert_eq!(n.adaptive.stop, "optimal");
    assert!(
        n.adaptive.relative_error <= 1e-6,
        "{:e}",
        n.adaptive.relative_error
    );
    assert_eq!(n.adaptive.product_rank, n.closed_form_rank);
    assert_eq!(n.closed_form_rank, n.planted_rank);
    assert!(
        (n.adaptive.objective - n.closed_form_objective).abs() <= 1e-9 * n.closed_form_objective
    );
    assert_eq!(n.adaptive.split_objective, n.adaptive.objective);
}

#[test]
fn c_adaptive_dropout_equalizes_the_columns_at_any_size() {
    let run = papers::equalization(Size::Reduced).expect("runs");
    let n = &run.numbers;
    assert_eq!(n.runs.len(), 2);
    for r in &n.runs {
        assert_eq!(r.column_products.len(), r.size);
        assert!(r.size > n.closed_form_rank, "more columns than the rank");
        assert!(
            r.equalization_spread <= 1e-6,
            "r = {}: spread {:e}",
            r.size,
            r.equalization_spread
        );
        let top = r.column_products[0];
        assert!((top - r.nuclear_norm_over_r).abs() <= 1e-6 * top);
        assert!(
            r.relative_error <= 1e-6,
            "r = {}: {:e}",
            r.size,
            r.relative_error
        );
    }
}

#[test]
fn d_calcium_footprints_and_traces_are_recovered() {
    let run = papers::calcium(Size::Reduced).expect("runs");
    let n = &run.numbers;
    assert_eq!(n.matches.len(), n.neurons);
    assert_eq!(
        (n.rank, n.extra_components),
        (n.neurons, 0),
        "one component per neuron"
    );
    for m in &n.matches {
        assert!(m.component.is_some(), "{m:?}");
        assert!(m.support_overlap >= 0.9, "neuron {}: {m:?}", m.neuron);
        assert!(m.trace_correlation >= 0.9, "neuron {}: {m:?}", m.neuron);
    }
    assert!(n.min_support_overlap >= 0.9);
}

#[test]
fn e_relu_teacher_is_recovered_with_the_rank_the_solver_finds() {
    let run = papers::relu_teacher(Size::Reduced).expect("runs");
    let n = &run.numbers;
    assert!(n.certified, "{n:?}");
    assert_eq!(n.rank, 3);
    assert!(n.loss <= 1e-6, "loss {}", n.loss);
    assert!(n.max_angle_error <= 1e-2, "{n:?}");
}

#[test]
fn e_planted_cp_tensor_is_recovered_at_its_rank() {
    let run = papers::cp_tensor(Size::Reduced).expect("runs");
    let n = &run.numbers;
    // The power method is a heuristic polar solver: the test passes, never a certificate.
    assert!(!n.certified, "{n:?}");
    assert_eq!(n.stop, "optimal", "{n:?}");
    assert_eq!(n.rank, n.planted_rank, "{n:?}");
    assert!(n.relative_error <= 1e-4, "{n:?}");
    assert!(n.min_congruence >= 1.0 - 1e-6, "{n:?}");
    assert!(n.lambda <= 1e-4 * n.lambda_max, "{n:?}");
    assert_eq!(run.artifacts.tensors.len(), 1);
    assert_eq!(run.artifacts.tensors[0].1.shape(), &[20, 15, 10]);
}
