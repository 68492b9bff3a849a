//! `hfc atoms`: the language reference, generated from the catalog and the code registry so
//! that the documentation cannot drift from what the compiler does.

use std::fmt::Write;

use serde_json::{Value, json};

use crate::catalog::{
    self, ATOMS, AtomKind, Domain, Exactness, INDUCED, Inputs, LOSSES, MapForm, OPERATORS,
    SOLVE_OPTIONS,
};
use crate::diagnostics::codes;

const KINDS: &[AtomKind] = &[
    AtomKind::Norm,
    AtomKind::NormPower,
    AtomKind::Cone,
    AtomKind::Activation,
    AtomKind::Map,
    AtomKind::Regularizer,
    AtomKind::NotHomogeneous,
];

/// A catalog template with its generic names: data Y, output X, network input D.
fn generic(template: &str) -> String {
    catalog::fill(template, &[("X", "X"), ("Y", "Y"), ("D", "D")])
}

fn signature(atom: &catalog::Atom) -> String {
    let inputs = match atom.inputs {
        Inputs::Exactly(0) => String::new(),
        Inputs::Exactly(1) => "x".into(),
        Inputs::Exactly(k) => (1..=k)
            .map(|i| format!("x{i}"))
            .collect::<Vec<_>>()
            .join(", "),
        Inputs::AtLeast(k) => {
            let mut v: Vec<String> = (1..=k).map(|i| format!("x{i}")).collect();
            v.push("...".into());
            v.join(", ")
        }
    };
    let params: Vec<String> = atom
        .params
        .iter()
        .map(|p| match (p.domain, p.default) {
            (Domain::Flag, _) => format!("[{}]", p.name),
            (_, Some(v)) => format!("{} = {}", p.name, catalog::format_number(v)),
            (_, None) => p.name.to_string(),
        })
        .collect();
    match (inputs.is_empty(), params.is_empty()) {
        (_, true) => format!("{}({inputs})", atom.name),
        (true, false) => format!("{}({})", atom.name, params.join(", ")),
        (false, false) => format!("{}({inputs}; {})", atom.name, params.join(", ")),
    }
}

fn map_form_name(form: MapForm) -> &'static str {
    match form {
        MapForm::Matrix => "matrix U * V'",
        MapForm::Tensor => "tensor cp(A, B, ...)",
        MapForm::ReluTwoLayer => "network relu(D * W1) * W2' on data D",
        MapForm::ReluThreeLayer => {
            "parallel network relu(relu(D * W1) * W2) * W3' on data D, W1 : [d, h, r]"
        }
    }
}

fn exactness_name(e: Exactness) -> String {
    match e {
        Exactness::Exact => "exact".into(),
        Exactness::Heuristic => "heuristic".into(),
        Exactness::ExactUpToInputDim(d) => format!("exact when the input dimension is ≤ {d}"),
    }
}

/// The reference as text.
pub fn text() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "hfc atoms: the catalog of the hfc compiler\n");
    for &kind in KINDS {
        let _ = writeln!(out, "{}", kind.title());
        for atom in ATOMS.iter().filter(|a| a.kind == kind) {
            let _ = writeln!(out, "  {:<28} {}", signature(atom), atom.summary);
            let mut facts = vec![format!("degree {}", atom.degree.describe())];
            if let Some((flag, law)) = atom.flag_law {
                facts.push(format!("with `{flag}`: {}", law.describe()));
            }
            if atom.separable {
                facts.push("separable over columns".into());
            }
            if let Some(dual) = atom.dual {
                facts.push(format!("dual norm {dual}"));
            }
            let _ = writeln!(out, "  {:<28} {}", "", facts.join("; "));
            if let Some(prox) = atom.prox {
                let _ = writeln!(out, "  {:<28} prox: {prox}", "");
            }
        }
        out.push('\n');
    }
    let _ = writeln!(out, "operators");
    for (op, law) in OPERATORS {
        let _ = writeln!(out, "  {op:<28} degree {law}");
    }
    let _ = writeln!(out, "\nlosses (`loss NAME;`, `loss NAME on observed(Y);`)");
    for loss in LOSSES {
        let params: Vec<String> = loss
            .params
            .iter()
            .map(|p| format!("{} = {}", p.name, catalog::describe_default(p)))
            .collect();
        let name = if params.is_empty() {
            loss.name.to_string()
        } else {
            format!("{}({})", loss.name, params.join(", "))
        };
        let value = generic(loss.value);
        let _ = writeln!(out, "  {name:<28} {value}; data: {}", loss.requires);
        let _ = writeln!(
            out,
            "  {:<28} gradient {}; smoothness {}; conjugate {}",
            "",
            generic(loss.gradient),
            loss.smoothness,
            generic(loss.conjugate)
        );
    }
    let _ = writeln!(
        out,
        "\nsolve options (`solve {{ rank <= 100; tol = 1e-8; }}`)"
    );
    for option in SOLVE_OPTIONS {
        let form = if option.bound {
            format!("{} <= N", option.name)
        } else {
            format!("{} = N", option.name)
        };
        let default = option
            .default
            .map(catalog::format_number)
            .unwrap_or_else(|| "no limit".into());
        let _ = writeln!(
            out,
            "  {form:<28} {} ({}; default {default})",
            option.doc,
            option.domain.describe()
        );
    }
    let _ = writeln!(out, "\nclosed forms (θ = one gauge per factor)");
    for row in INDUCED {
        let gauges: Vec<&str> = row
            .gauges
            .iter()
            .map(|g| {
                ATOMS
                    .iter()
                    .find(|a| a.gauge == Some(*g) && a.kind == AtomKind::Norm)
                    .map(|a| a.name)
                    .unwrap_or("?")
            })
            .collect();
        let cone = if row.nonnegative {
            ", factors >= 0"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {}: {}{cone}",
            map_form_name(row.map),
            gauges.join(" × ")
        );
        let _ = writeln!(
            out,
            "      Ω(X) = {}  ({})",
            generic(row.omega),
            row.omega_name
        );
        let _ = writeln!(
            out,
            "      Ω°(Z) = {}  ({}: {})",
            generic(row.polar),
            exactness_name(row.exactness),
            row.oracle.describe(8)
        );
    }
    let _ = writeln!(out, "\ndiagnostic codes");
    for code in codes::ALL {
        let _ = writeln!(
            out,
            "  {:<40} {:<8} {}",
            code.name,
            code.severity.as_str(),
            code.summary
        );
    }
    out
}

/// The reference as JSON.
pub fn json() -> Value {
    json!({
        "atoms": ATOMS.iter().map(|a| json!({
            "name": a.name,
            "signature": signature(a),
            "kind": a.kind.title(),
            "degree": a.degree.describe(),
            "separable": a.separable,
            "dual": a.dual,
            "prox": a.prox,
            "summary": a.summary,
        })).collect::<Vec<_>>(),
        "losses": LOSSES.iter().map(|l| json!({
            "name": l.name,
            "value": generic(l.value),
            "gradient": generic(l.gradient),
            "smoothness": l.smoothness,
            "conjugate": generic(l.conjugate),
            "params": l.params.iter().map(|p| json!({"name": p.name, "default": p.default})).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "solve_options": SOLVE_OPTIONS.iter().map(|o| json!({
            "name": o.name, "bound": o.bound, "default": o.default, "doc": o.doc,
        })).collect::<Vec<_>>(),
        "closed_forms": INDUCED.iter().map(|r| json!({
            "map": map_form_name(r.map),
            "nonnegative": r.nonnegative,
            "omega": generic(r.omega),
            "omega_name": r.omega_name,
            "polar": generic(r.polar),
            "exact": r.exactness == Exactness::Exact,
        })).collect::<Vec<_>>(),
        "codes": codes::ALL.iter().map(|c| json!({
            "code": c.name, "severity": c.severity.as_str(), "summary": c.summary,
        })).collect::<Vec<_>>(),
    })
}
