//! Benchmarks (ratios measured in one run, printed; never asserted):
//!
//! 1. time to a certified optimum (relative gap ≤ 1e-6) for nuclear-norm low-rank
//!    approximation against the closed form by a full SVD (faer) of the same matrix;
//! 2. masked completion: time per outer iteration with 5% observed against the same model on
//!    every entry (the dense path).
//!
//! `cargo bench -p hfc-tests --bench lowrank [-- SIZES]`, SIZES like `1000x500x20`.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use hfc_runtime::Value;
use hfc_runtime::linalg;
use hfc_runtime::synth::Synth;
use hfc_tests::{NUCLEAR, options, solve_text};

fn lowrank(m: usize, n: usize, rank: usize) {
    let mut synth = Synth::new(42);
    let mut y = synth.low_rank(m, n, rank, false) * 10.0;
    synth.add_noise(&mut y, 0.1);
    let clock = Instant::now();
    let s = linalg::singular_values(y.view()).expect("svd");
    let svd_seconds = clock.elapsed().as_secs_f64();
    // λ between the planted part and the noise: the solution has the planted rank.
    let lambda = 0.5 * (s[rank - 1] + s[rank]);
    let closed: f64 = s
        .iter()
        .map(|&sig| {
            if sig > lambda {
                lambda * sig - 0.5 * lambda * lambda
            } else {
                0.5 * sig * sig
            }
        })
        .sum();
    let clock = Instant::now();
    let solved = solve_text(
        NUCLEAR,
        &[("lambda", lambda)],
        Value::Matrix(y),
        &options(1e-6),
    )
    .expect("solves");
    let hfc_seconds = clock.elapsed().as_secs_f64();
    let sol = solved.solution;
    println!(
        "lowrank {m}x{n} rank {rank}: hfc {hfc_seconds:.3} s (rank {}, relative gap {:.1e}, objective error {:.1e}) vs full SVD {svd_seconds:.3} s: ratio hfc/SVD = {:.2}",
        sol.rank(),
        sol.relative_gap.unwrap_or(f64::NAN),
        (sol.objective - closed).abs() / closed,
        hfc_seconds / svd_seconds
    );
}

fn completion(m: usize, n: usize, rank: usize, fraction: f64) {
    let mut synth = Synth::new(7);
    let truth = synth.low_rank(m, n, rank, false) * 10.0;
    let observed = synth.observe(&truth, fraction);
    let masked = NUCLEAR.replace("loss squared;", "loss squared on observed(Y);");
    let mut per_outer = Vec::new();
    for (text, data) in [
        (masked.as_str(), Value::Observed(observed.clone())),
        (NUCLEAR, Value::Matrix(truth.clone())),
    ] {
        let mut opts = options(1e-6);
        opts.max_iter = 200;
        let clock = Instant::now();
        let solved = solve_text(text, &[("lambda", 1.0)], data, &opts).expect("solves");
        let seconds = clock.elapsed().as_secs_f64();
        let s = solved.solution;
        per_outer.push(seconds / (s.iterations.max(1)) as f64);
    }
    println!(
        "completion {m}x{n}, {:.0}% observed ({} entries): {:.3} ms per descent iteration masked vs {:.3} ms dense: ratio masked/dense = {:.3}",
        fraction * 100.0,
        observed.len(),
        per_outer[0] * 1e3,
        per_outer[1] * 1e3,
        per_outer[0] / per_outer[1]
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let sizes: Vec<(usize, usize, usize)> = if args.is_empty() {
        vec![(1000, 500, 20)]
    } else {
        args.iter()
            .filter_map(|a| {
                let p: Vec<usize> = a.split('x').filter_map(|x| x.parse().ok()).collect();
                (p.len() == 3).then(|| (p[0], p[1], p[2]))
            })
            .collect()
    };
    for (m, n, r) in sizes {
        lowrank(m, n, r);
    }
    completion(2000, 1000, 10, 0.05);
}
