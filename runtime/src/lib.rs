//! `hfc-runtime`: executes the kernel programs the hfc compiler lowers models to, and runs the
//! rank-growing meta-algorithm whose stopping rule is the polar certificate.
//!
//! ```text
//! kir::Program ─ valid::validate ─> (validated) ─ Backend (interp::Interpreter | …)
//!   data::read ─> Value ─┘                                   │
//!   solve::solve(program, backend, options) ─> Solution ─ report ─> report.json, plot.svg
//! ```
//!
//! It knows nothing of `.hfm` syntax: its inputs are a validated [`kir::Program`], data and
//! options. It never prints; progress goes through a callback.
#![deny(missing_docs)]

pub mod backend;
pub mod certify;
pub mod cpu;
pub mod data;
pub mod gauge;
pub mod gpu;
pub mod interp;
pub mod kir;
pub mod linalg;
pub mod machine;
pub mod plot;
pub mod polar;
pub mod report;
pub mod solve;
pub mod synth;
pub mod valid;
pub mod value;

pub use backend::{Backend, ExecError};
pub use interp::Interpreter;
pub use value::{Observed, Value};
