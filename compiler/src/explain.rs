//! `hfc explain`: a model's degrees, induced regularizer, polar problem and certificate, as
//! text for people and JSON for scripts (the DESIGN section 8 contract).

use std::fmt::Write;

use serde_json::{Value, json};

use crate::ModelReport;
use crate::catalog;
use crate::ir::{self, RegForm};
use crate::math;

/// The explanation of one model as text; `None` when the model did not check.
pub fn to_text(report: &ModelReport) -> Option<String> {
    let ir = report.ir.as_ref()?;
    let induced = report.induced.as_ref()?;
    let mut out = String::new();
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(out, "  {key:<12} {value}");
    };
    let args: Vec<String> = ir
        .map
        .factor_order()
        .iter()
        .map(|&k| math::column_name(&ir.factors[k].name))
        .collect();
    let args = args.join(", ");
    line("problem", &induced.problem);
    if !ir.params.is_empty() {
        let params: Vec<String> = ir
            .params
            .iter()
            .map(|(name, value)| {
                let sym = math::symbol(name);
                if sym == *name {
                    format!("{name} = {}", catalog::format_number(*value))
                } else {
                    format!("{sym} = {name} = {}", catalog::format_number(*value))
                }
            })
            .collect();
        line("parameters", &params.join(", "));
    }
    line("loss", &loss_text(ir, induced.variable));
    let map_degree = degree_text(report.map_degree, &report.map_degrees);
    if args.is_empty() {
        line("map", &format!("{}    ({map_degree})", ir.map_math));
    } else {
        line(
            "map",
            &format!("φ({args}) = {}    ({map_degree})", induced.phi),
        );
    }
    if !matches!(ir.reg.form, RegForm::None) {
        let verdict = if ir.reg.matched {
            "matches the map"
        } else {
            "does not match the map"
        };
        let degree = ir
            .reg
            .degree
            .map(|d| format!("degree {d}"))
            .unwrap_or_else(|| "degree adapts to the size".into());
        // A regularizer without `sum(i)` (weight decay) is shown whole: Θ(W).
        let per_column = ir.reg.per_column || matches!(ir.reg.form, RegForm::Dropout { .. });
        let lhs = if args.is_empty() || !per_column {
            "Θ(W)".to_string()
        } else {
            format!("θ({args})")
        };
        line(
            "regularizer",
            &format!("{lhs} = {}    ({degree}, {verdict})", induced.theta),
        );
    }
    match (&induced.omega, &induced.omega_missing) {
        (Some(omega), _) => {
            let name = induced
                .omega_name
                .as_ref()
                .map(|n| format!("    ({n})"))
                .unwrap_or_else(|| "    (no closed form)".into());
            line(
                "induced",
                &format!("Ω({}) = {omega}{name}", induced.variable),
            );
        }
        (None, Some(why)) => line("induced", &format!("none: {why}")),
        (None, None) => {}
    }
    if let Some(convex) = &induced.convex_problem {
        line("convex", convex);
    }
    if let Some(polar) = &induced.polar {
        line("polar", &format!("Ω°(Z) = {polar}"));
    }
    if let Some(solver) = &induced.polar_solver {
        let exactness = match (&induced.polar_exact, &induced.polar_exact_condition) {
            (true, _) => "exact".to_string(),
            (false, Some(cond)) => cond.clone(),
            (false, None) => "heuristic".to_string(),
        };
        line("polar solver", &format!("{solver} ({exactness})"));
    }
    line("certificate", &induced.certificate_text);
    let cap = ir
        .solve
        .max_rank
        .map(|r| format!("at most {r}"))
        .unwrap_or_else(|| "no cap".into());
    line(
        "size",
        &format!(
            "{} grows from {} ({cap}); tol = {}",
            ir.size_index,
            ir.solve.init_rank,
            catalog::format_number(ir.solve.tol)
        ),
    );
    Some(format!("model {}\n{out}", ir.name))
}

fn loss_text(ir: &ir::Model, var: &str) -> String {
    let kind = ir.loss.kind;
    let params: Vec<String> = kind
        .params
        .iter()
        .zip(&ir.loss.params)
        .map(|(spec, v)| {
            format!(
                "{} = {}",
                math::symbol(spec.name),
                catalog::format_number(*v)
            )
        })
        .collect();
    let observed = if ir.loss.observed {
        " on the observed entries"
    } else {
        ""
    };
    let params = if params.is_empty() {
        String::new()
    } else {
        format!("({})", params.join(", "))
    };
    let y = &ir.data[ir.loss.target].name;
    let gradient = catalog::fill(kind.gradient, &[("X", var), ("Y", y)]);
    format!(
        "{}{params}{observed}; gradient {gradient}, smoothness {}",
        kind.name, kind.smoothness
    )
}

fn degree_text(total: Option<u32>, per_factor: &[(String, u32)]) -> String {
    let Some(total) = total else {
        return "not homogeneous".into();
    };
    let parts: Vec<String> = per_factor
        .iter()
        .filter(|(_, d)| *d > 0)
        .map(|(name, d)| format!("{d} in {name}"))
        .collect();
    if parts.is_empty() {
        format!("degree {total}")
    } else {
        format!("degree {total}: {}", parts.join(", "))
    }
}

/// The explanation as the JSON object of the contract: `map_degree`, `regularizer_degree`,
/// `induced_regularizer`, `polar`, `polar_exact`, `certificate`, and more.
pub fn to_json(report: &ModelReport) -> Value {
    let ir = report.ir.as_ref();
    let induced = report.induced.as_ref();
    let per_factor: serde_json::Map<String, Value> = report
        .map_degrees
        .iter()
        .map(|(n, d)| (n.clone(), json!(d)))
        .collect();
    json!({
        "model": report.name,
        "map_degree": report.map_degree,
        "map_degree_per_factor": per_factor,
        "regularizer_degree": report.reg_degree,
        "degrees_match": ir.map(|m| m.reg.matched),
        "problem": induced.map(|i| &i.problem),
        "map": induced.map(|i| &i.phi),
        "theta": induced.map(|i| &i.theta),
        "induced_regularizer": induced.and_then(|i| i.omega.as_ref()),
        "induced_regularizer_name": induced.and_then(|i| i.omega_name.as_ref()),
        "induced_regularizer_missing": induced.and_then(|i| i.omega_missing.as_ref()),
        "convex_problem": induced.and_then(|i| i.convex_problem.as_ref()),
        "polar": induced.and_then(|i| i.polar.as_ref()),
        "polar_solver": induced.and_then(|i| i.polar_solver.as_ref()),
        "polar_exact": induced.map(|i| i.polar_exact),
        "polar_exact_condition": induced.and_then(|i| i.polar_exact_condition.as_ref()),
        "certificate": induced.map(|i| i.certificate.as_str()),
        "certificate_text": induced.map(|i| &i.certificate_text),
        "size_index": ir.map(|m| &m.size_index),
        "max_rank": ir.and_then(|m| m.solve.max_rank),
    })
}
