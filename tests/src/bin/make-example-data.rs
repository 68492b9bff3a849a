//! Writes the data files of `examples/` from fixed seeds (they are committed; run this to
//! regenerate them): `cargo run -p hfc-tests --bin make-example-data`.

#![allow(clippy::print_stdout)]

use std::path::Path;

use hfc_runtime::synth::{self, Synth};
use ndarray_npy::WriteNpyExt;

fn write_npy<D: ndarray::Dimension>(path: &Path, a: &ndarray::Array<f64, D>) {
    let mut bytes = Vec::new();
    a.write_npy(&mut bytes).expect("encodable");
    std::fs::write(path, bytes).expect("writable");
    println!("wrote {}", path.display());
}

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    // lowrank: a 60 × 40 matrix of rank 5 plus noise.
    let mut s = Synth::new(1);
    let mut y = s.low_rank(60, 40, 5, false);
    s.add_noise(&mut y, 0.1);
    write_npy(&dir.join("Y.npy"), &y);
    // completion: a 100 × 80 matrix of rank 3, 30% of its entries observed.
    let mut s = Synth::new(2);
    let y = s.low_rank(100, 80, 3, false);
    let observed = s.observe(&y, 0.3);
    std::fs::write(dir.join("ratings.mtx"), synth::to_matrix_market(&observed)).expect("writable");
    println!("wrote {}", dir.join("ratings.mtx").display());
    // nmf: a 50 × 40 nonnegative matrix of rank 4 plus a little nonnegative noise.
    let mut s = Synth::new(3);
    let mut y = s.low_rank(50, 40, 4, true);
    let noise = s.normal(50, 40).mapv(f64::abs);
    y.scaled_add(0.01, &noise);
    write_npy(&dir.join("faces.npy"), &y);
    // relu_net: a three-neuron ReLU teacher on 200 points of the plane.
    let (x, y, _) = Synth::new(5).relu_teacher(200, &synth::RELU_TEACHER);
    write_npy(&dir.join("X.npy"), &x);
    write_npy(&dir.join("relu_Y.npy"), &y);
    // cp3: a 30 × 20 × 10 tensor of CP rank 3 plus a little noise.
    let mut s = Synth::new(6);
    let (mut t, _) = s.cp_tensor(&[30, 20, 10], 3);
    let noise = s.normal(30, 200);
    t.iter_mut()
        .zip(noise.iter())
        .for_each(|(x, e)| *x += 0.01 * e);
    write_npy(&dir.join("T.npy"), &t);
}
