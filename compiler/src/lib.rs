//! `hfc`: the compiler library of the hfc modeling language.
//!
//! One pipeline, one module per stage, each with one input and one output type:
//!
//! ```text
//! source ─ hfc_grammar::parse ─> ast ─ resolve ─> hir ─ shape ─> ShapeTable
//!        ─ degree ─> DegreeTable ─ (gate: no errors) ─ ir::build ─> ir::Model
//!        ─ derive ─> InducedProblem
//! ```
//!
//! Every stage returns its table and pushes diagnostics; none fails. [`check`] runs them all.
//! The library does no IO (imports come through a [`FileLoader`]) and never prints: the CLI
//! (`main.rs`) decides what to show, using [`render`] and [`explain`].

pub mod catalog;
pub mod degree;
pub mod derive;
pub mod diagnostics;
pub mod explain;
pub mod hir;
pub mod ir;
pub mod lower;
pub mod math;
pub mod reference;
pub mod render;
pub mod resolve;
pub mod shape;
pub mod source;

pub use diagnostics::{Diagnostic, Diagnostics, Severity};
pub use source::{FileLoader, NoFiles, SourceDb};

/// What `check` learned about one model.
#[derive(Debug, Clone)]
pub struct ModelReport {
    /// The model's name.
    pub name: String,
    /// The map's total degree, when it is homogeneous.
    pub map_degree: Option<u32>,
    /// The regularizer's total degree, when it is homogeneous.
    pub reg_degree: Option<u32>,
    /// The map's degree per factor (factor name, degree), when homogeneous per factor.
    pub map_degrees: Vec<(String, u32)>,
    /// The model IR (only when the program has no errors).
    pub ir: Option<ir::Model>,
    /// The induced problem (only when the program has no errors).
    pub induced: Option<derive::InducedProblem>,
}

/// The result of checking a file.
#[derive(Debug)]
pub struct Checked {
    /// The files read.
    pub db: SourceDb,
    /// Every diagnostic, sorted by file and position.
    pub diagnostics: Diagnostics,
    /// One report per model of the root file, in source order.
    pub models: Vec<ModelReport>,
}

/// Runs the whole front end on the file `root_name` with text `root_text`.
pub fn check(root_name: &str, root_text: &str, loader: &mut dyn FileLoader) -> Checked {
    check_with(root_name, root_text, loader, &[])
}

/// [`check`] with parameter values that replace the declared defaults (`--set NAME=VALUE`).
pub fn check_with(
    root_name: &str,
    root_text: &str,
    loader: &mut dyn FileLoader,
    overrides: &[(String, f64)],
) -> Checked {
    let mut diags = Diagnostics::new();
    let db = SourceDb::load(root_name, root_text, loader, &mut diags);
    let program = resolve::resolve(&db, overrides, &mut diags);
    let shapes = shape::infer_shapes(&program, &mut diags);
    let degrees = degree::check_degrees(&program, &shapes, &mut diags);
    // Gate: the model IR and the derivation need a program without errors.
    let gate_open = !diags.has_errors();
    let mut models = Vec::with_capacity(program.models.len());
    for (k, model) in program.models.iter().enumerate() {
        let model_degrees = degrees.models.get(k).cloned().unwrap_or_default();
        let ir = if gate_open {
            ir::build(&program, &shapes, &degrees, k)
        } else {
            None
        };
        let induced = ir.as_ref().map(|m| derive::derive_induced(m, &mut diags));
        models.push(ModelReport {
            name: model.name.clone(),
            map_degree: model_degrees.map_total,
            reg_degree: model_degrees.reg.as_ref().and_then(degree::Degree::total),
            map_degrees: model_degrees
                .map
                .map(|m| {
                    model
                        .factors
                        .iter()
                        .map(|(id, f)| (f.name.clone(), m.of(degree::Var::Factor(id))))
                        .collect()
                })
                .unwrap_or_default(),
            ir,
            induced,
        });
    }
    diags.sort();
    Checked {
        db,
        diagnostics: diags,
        models,
    }
}
