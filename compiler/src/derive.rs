//! Derivation: the induced convex regularizer Ω, its polar problem, and the certificate.
//!
//! Input: an [`ir::Model`]. Output: an [`InducedProblem`]. Closed forms come from the catalog's
//! [`INDUCED`](catalog::INDUCED) table, looked up by the map's form and one gauge per factor;
//! anything else gets Ω's variational definition and a heuristic polar, labelled as such. The
//! one diagnostic: a matched, parallel model whose map has no polar solver at all.
//!
//! The facts used (Haeffele & Vidal): with θ and φ positively homogeneous of the same degree,
//! Ω(X) = inf { Σᵢ θ(Wᵢ) : Φ(W) = X } is convex, its polar is
//! Ω°(Z) = sup { ⟨Z, φ(w)⟩ : θ(w) ≤ 1 }, and a point is globally optimal when
//! Ω°(−∇ℓ(X)) ≤ λ. For θ = Πₖ gₖ(wᵏ) the constraint θ(w) ≤ 1 may be taken factor by factor
//! (gₖ(wᵏ) ≤ 1), by homogeneity. Weight decay on two factors equals 2‖u‖‖v‖ at balance
//! (AM–GM), so it induces twice the product-of-norms regularizer.

use crate::catalog::{self, Exactness, Gauge, PolarOracle};
use crate::diagnostics::{Diagnostics, degree as diag};
use crate::ir::{self, FactorGauge, Map, RegForm, Weight};

/// What the certificate of `hfc run` will be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Certificate {
    /// The polar is solved exactly: optimality is proved and the duality gap bounds the
    /// suboptimality.
    Exact,
    /// The polar is solved by a local method: a necessary condition, no bound.
    Heuristic,
    /// No certificate (degrees do not match, not parallel, no polar solver, no regularizer).
    None,
}

impl Certificate {
    /// `"exact"`, `"heuristic"` or `"none"`, as in `report.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Certificate::Exact => "exact",
            Certificate::Heuristic => "heuristic",
            Certificate::None => "none",
        }
    }
}

/// The convex problem behind a model.
#[derive(Clone, Debug)]
pub struct InducedProblem {
    /// The convex problem's variable: `X`, or `M` when the model calls data `X`.
    pub variable: &'static str,
    /// The nonconvex problem as written: loss + λ Θ.
    pub problem: String,
    /// The map φ of one subnetwork, single-column notation (`u vᵀ`).
    pub phi: String,
    /// θ of one subnetwork (`‖u‖₂ ‖v‖₂`).
    pub theta: String,
    /// Ω(X), when defined.
    pub omega: Option<String>,
    /// Ω's name (`nuclear norm`), when it has one.
    pub omega_name: Option<String>,
    /// Why Ω is not defined, when it is not.
    pub omega_missing: Option<String>,
    /// The convex problem min_X ℓ(Y, X) + λ Ω(X), when Ω is defined.
    pub convex_problem: Option<String>,
    /// Ω°(Z), when there is a polar problem.
    pub polar: Option<String>,
    /// How the polar is solved.
    pub polar_solver: Option<String>,
    /// The solver the runtime will use.
    pub oracle: Option<PolarOracle>,
    /// Whether the polar's value is exact.
    pub polar_exact: bool,
    /// When the polar is exact only under a condition on the data, the condition.
    pub polar_exact_condition: Option<String>,
    /// The certificate.
    pub certificate: Certificate,
    /// The certificate in words.
    pub certificate_text: String,
}

/// Derives the induced problem of a checked model.
pub fn derive_induced(model: &ir::Model, diags: &mut Diagnostics) -> InducedProblem {
    let lambda = if model.reg.weight.math.is_empty() {
        String::new()
    } else {
        format!("{} ", model.reg.weight.math)
    };
    let loss_of = |x: &str| loss_math(model, x);
    let problem = match model.reg.form {
        RegForm::None => format!("minimize over r, W:  {}", loss_of(&model.map_math)),
        _ => format!(
            "minimize over r, W:  {} + {}",
            loss_of(&model.map_math),
            model.reg.math
        ),
    };
    let phi = phi_single(model);
    let theta = theta_text(model);
    let mut out = InducedProblem {
        variable: convex_var(model),
        problem,
        phi,
        theta,
        omega: None,
        omega_name: None,
        omega_missing: None,
        convex_problem: None,
        polar: None,
        polar_solver: None,
        oracle: None,
        polar_exact: false,
        polar_exact_condition: None,
        certificate: Certificate::None,
        certificate_text: String::new(),
    };
    // Ω is defined only for a parallel regularizer of the map's degree.
    let missing = match (&model.reg.form, model.reg.parallel, model.reg.matched) {
        (RegForm::None, ..) => Some("there is no regularizer".to_string()),
        (_, false, _) => Some("the regularizer is not a sum over the subnetworks".to_string()),
        (_, _, false) => Some(format!(
            "the regularizer's degree ({}) differs from the map's ({})",
            model
                .reg
                .degree
                .map(|d| d.to_string())
                .unwrap_or_else(|| "?".into()),
            model.map_degree
        )),
        _ => None,
    };
    if let Some(why) = missing {
        out.omega_missing = Some(why);
        out.certificate_text = "none: without an induced convex regularizer, a local minimum \
                                is not certified global"
            .into();
        return out;
    }
    match &model.reg.form {
        RegForm::Dropout { adaptive: true, p } => adaptive_dropout(model, *p, &mut out),
        RegForm::Product { gauges, scale } => closed_or_variational(model, gauges, scale, &mut out),
        RegForm::WeightDecay(gauges) if gauges.len() == 2 => {
            // At balance ‖u‖² + ‖v‖² = 2‖u‖‖v‖ (AM–GM).
            let product: Vec<FactorGauge> = gauges
                .iter()
                .map(|g| FactorGauge {
                    power: 1,
                    ..g.clone()
                })
                .collect();
            let two = Weight {
                value: 2.0,
                math: "2".into(),
            };
            closed_or_variational(model, &product, &two, &mut out)
        }
        _ => variational(model, &mut out),
    }
    if out.polar.is_none() && out.certificate == Certificate::None {
        diags.push(diag::no_polar_oracle(
            model.file,
            model.map_span,
            "this map",
        ));
    }
    // A closed form reads inline; a definition (`inf { … }`) is named Ω(X) instead.
    out.convex_problem = out.omega.as_ref().map(|omega| {
        let var = convex_var(model);
        let omega = if omega.contains('{') {
            format!("Ω({var})")
        } else {
            omega.clone()
        };
        // `λ·2‖X‖_*` keeps a scaled Ω apart from the weight.
        let sep = match (
            lambda.is_empty(),
            omega.starts_with(|c: char| c.is_ascii_digit()),
        ) {
            (true, _) => "",
            (false, true) => "·",
            (false, false) => " ",
        };
        format!(
            "minimize over {var}:  {} + {}{sep}{omega}",
            loss_of(var),
            lambda.trim_end()
        )
    });
    out
}

/// The name of the convex problem's variable: `X`, or `M` when the model calls data `X`.
fn convex_var(model: &ir::Model) -> &'static str {
    if model.data.iter().any(|d| d.name == "X") {
        "M"
    } else {
        "X"
    }
}

/// The loss with `x` for the model's output.
fn loss_math(model: &ir::Model, x: &str) -> String {
    let y = &model.data[model.loss.target].name;
    let template = if model.loss.observed {
        model.loss.kind.masked_value
    } else {
        model.loss.kind.value
    };
    // `Y∘(U Vᵀ)`, not `Y∘U Vᵀ`: a compound output is parenthesized inside a product.
    let x = if x.contains(' ') && template.contains("∘{X}") {
        format!("({x})")
    } else {
        x.to_string()
    };
    catalog::fill(template, &[("Y", y), ("X", &x)])
}

/// φ for one subnetwork, in single-column notation.
fn phi_single(model: &ir::Model) -> String {
    let col = |k: usize| crate::math::column_name(&model.factors[k].name);
    match &model.map {
        Map::Matrix { left, right } => format!("{} {}ᵀ", col(*left), col(*right)),
        Map::Tensor { factors } => factors
            .iter()
            .map(|&k| col(k))
            .collect::<Vec<_>>()
            .join(" ⊗ "),
        Map::Network {
            input,
            layers,
            activation,
            ..
        } => {
            let x = &model.data[*input].name;
            let mut text = x.clone();
            for (n, &k) in layers.iter().enumerate() {
                if n + 1 == layers.len() {
                    text = format!("{text} {}ᵀ", col(k));
                } else {
                    text = format!("{text} {}", col(k));
                    if let Some(a) = activation {
                        text = format!("{a}({text})");
                    }
                }
            }
            text
        }
        Map::General => model.map_math.clone(),
    }
}

fn theta_text(model: &ir::Model) -> String {
    match &model.reg.form {
        RegForm::None => String::new(),
        RegForm::Dropout { p, adaptive } => {
            let squares: Vec<String> = model
                .map
                .factor_order()
                .iter()
                .map(|&k| format!("‖{}‖₂²", crate::math::column_name(&model.factors[k].name)))
                .collect();
            // The dropout expectation of the ½-squared loss (Cavazza et al.'s with ½).
            let rate = if *adaptive {
                "½·r·p/(1 − p)"
            } else {
                "½·p/(1 − p)"
            };
            format!(
                "{rate}·{} with p = {}",
                squares.join(" "),
                catalog::format_number(*p)
            )
        }
        _ => model.reg.theta_single.clone(),
    }
}

/// A gauge in single-column notation: `‖v‖₂ + g‖v‖₁`.
fn gauge_math(model: &ir::Model, g: &FactorGauge) -> String {
    let col = crate::math::column_name(&model.factors[g.factor].name);
    let terms: Vec<String> = g
        .terms
        .iter()
        .map(|(w, atom)| {
            let t = atom.math.replace("{}", &col);
            if w.value == 1.0 && w.math.is_empty() || w.math == "1" {
                t
            } else if t.starts_with(char::is_alphabetic) {
                format!("{}·{t}", w.math)
            } else {
                format!("{}{t}", w.math)
            }
        })
        .collect();
    terms.join(" + ")
}

fn closed_or_variational(
    model: &ir::Model,
    gauges: &[FactorGauge],
    scale: &Weight,
    out: &mut InducedProblem,
) {
    let order = model.map.factor_order();
    let ordered: Option<Vec<&FactorGauge>> = order
        .iter()
        .map(|k| gauges.iter().find(|g| g.factor == *k))
        .collect();
    let simple: Option<Vec<Gauge>> = ordered.as_ref().and_then(|gs| {
        gs.iter()
            .map(|g| (g.power == 1).then(|| g.simple()).flatten())
            .collect()
    });
    let nonneg: Vec<bool> = order.iter().map(|&k| model.factors[k].nonneg).collect();
    let all_nonneg = !nonneg.is_empty() && nonneg.iter().all(|&b| b);
    let any_nonneg = nonneg.iter().any(|&b| b);
    let row = match (model.map.form(), &simple) {
        (Some(form), Some(simple)) if all_nonneg || !any_nonneg => catalog::INDUCED
            .iter()
            .find(|row| row.gauges_match(form, simple, all_nonneg)),
        _ => None,
    };
    match row {
        Some(row) => {
            // θ = c·Πₖ gₖ induces c·Ω and the polar Ω°/c.
            let factor = if *scale == Weight::one() {
                String::new()
            } else {
                scale.math.clone()
            };
            let data = match &model.map {
                Map::Network { input, .. } => model.data[*input].name.as_str(),
                _ => "",
            };
            let names = [("X", convex_var(model)), ("D", data)];
            let omega = catalog::fill(row.omega, &names);
            let polar = catalog::fill(row.polar, &names);
            out.omega = Some(if factor.is_empty() {
                omega
            } else if omega.contains(['=', ' ']) {
                format!("{factor}·({omega})")
            } else {
                format!("{factor}{omega}")
            });
            out.omega_name = Some(row.omega_name.to_string());
            out.polar = Some(if factor.is_empty() {
                polar
            } else {
                if polar.contains(' ') {
                    format!("({polar})/{factor}")
                } else {
                    format!("{polar}/{factor}")
                }
            });
            set_oracle(model, row.oracle, row.exactness, out);
        }
        None => variational(model, out),
    }
}

/// Ω by its definition; the polar by alternating maximization (matrices), the higher-order
/// power method (tensors) or pattern search (ReLU networks), all heuristic.
fn variational(model: &ir::Model, out: &mut InducedProblem) {
    out.omega = Some(format!(
        "inf {{ Σᵢ θ(wᵢ) : {} = Σᵢ φ(wᵢ) }}",
        convex_var(model)
    ));
    out.omega_name = None;
    let constraint = match &model.reg.form {
        RegForm::Product { gauges, .. } => {
            let mut parts: Vec<String> = gauges
                .iter()
                .map(|g| format!("{} ≤ 1", gauge_math(model, g)))
                .collect();
            // Cone constraints restrict the polar's maximizers too.
            parts.extend(
                gauges
                    .iter()
                    .filter(|g| model.factors[g.factor].nonneg)
                    .map(|g| {
                        format!(
                            "{} ≥ 0",
                            crate::math::column_name(&model.factors[g.factor].name)
                        )
                    }),
            );
            parts.join(", ")
        }
        _ => format!("{} ≤ 1", model.reg.theta_column),
    };
    let oracle = match &model.map {
        Map::Matrix { .. } => Some(PolarOracle::AlternatingProx),
        Map::Tensor { .. } => Some(PolarOracle::HigherOrderPower),
        Map::Network { .. } => Some(PolarOracle::AlternatingProx),
        Map::General => None,
    };
    if let Some(oracle) = oracle {
        out.polar = Some(format!("sup {{ ⟨Z, {}⟩ : {constraint} }}", out.phi));
        set_oracle(model, oracle, Exactness::Heuristic, out);
    }
}

fn adaptive_dropout(model: &ir::Model, p: f64, out: &mut InducedProblem) {
    let lambda1 = p / (1.0 - p);
    out.omega = Some(format!("½λ₁‖{}‖_*²", convex_var(model)));
    out.omega_name = Some(format!(
        "squared nuclear norm, the convex envelope; λ₁ = p/(1 − p) = {}",
        catalog::format_number(lambda1)
    ));
    let squared_loss = model.loss.kind.name == "squared" && !model.loss.observed;
    if squared_loss && matches!(model.map, Map::Matrix { .. }) {
        // No polar problem: the global optimum has a closed form to compare with.
        set_oracle(model, PolarOracle::ClosedForm, Exactness::Exact, out);
    } else {
        out.polar =
            Some("sup { ⟨Z, u vᵀ⟩ : ‖u‖₂ ≤ 1, ‖v‖₂ ≤ 1 } = σ_max(Z), against λ_r = r·λ₁".into());
        set_oracle(
            model,
            PolarOracle::TopSingularValue,
            Exactness::Heuristic,
            out,
        );
    }
}

fn set_oracle(
    model: &ir::Model,
    oracle: PolarOracle,
    exactness: Exactness,
    out: &mut InducedProblem,
) {
    out.oracle = Some(oracle);
    out.polar_solver = Some(oracle.describe(model.solve.polar_starts));
    let (exact, condition) = match exactness {
        Exactness::Exact => (true, None),
        Exactness::Heuristic => (false, None),
        Exactness::ExactUpToInputDim(d) => {
            let input_dim = match &model.map {
                Map::Network { input, .. } => model.data[*input].shape.last().cloned(),
                _ => None,
            };
            let dim = input_dim.unwrap_or_else(|| "d".into());
            match dim.parse::<u32>() {
                Ok(n) => (n <= d, None),
                Err(_) => (false, Some(format!("exact when {dim} ≤ {d}"))),
            }
        }
    };
    out.polar_exact = exact;
    out.polar_exact_condition = condition;
    out.certificate = if exact {
        Certificate::Exact
    } else {
        Certificate::Heuristic
    };
    out.certificate_text = match (exact, &out.polar_exact_condition) {
        (true, _) if oracle == PolarOracle::ClosedForm => {
            "exact: stops when σ_max(Y − X) ≤ λ₁‖X‖_*(1 + tol) with equalized factors; the \
             duality gap bounds F(W) − F*, and the closed form S_τ(Y) is reported alongside"
                .into()
        }
        (true, _) => "exact: stops when Ω°(−∇ℓ(X)) ≤ λ(1 + tol); the duality gap F(W) − D(Z) \
                      bounds F(W) − F*"
            .into(),
        (false, Some(cond)) => format!(
            "{cond} (the input dimension); otherwise heuristic: Ω°(−∇ℓ) ≤ λ is necessary, not \
             sufficient, and there is no gap bound"
        ),
        (false, None) => "heuristic: the polar is maximized locally, so Ω°(−∇ℓ) ≤ λ is \
                          necessary, not sufficient; no gap bound"
            .into(),
    };
}

#[cfg(test)]
mod tests {
    //! The derivation, one line per rule: (data and factors, map, regularizer) → (Ω, Ω°,
    //! certificate), through the whole front end.

    use crate::{NoFiles, check};

    fn derive(decls: &str, map: &str, reg: &str) -> (String, String, &'static str) {
        let text =
            format!("model t {{ param c = 3; {decls} fit Y ~ {map}; loss squared; reg {reg}; }}");
        let checked = check("t.hfm", &text, &mut NoFiles);
        let codes: Vec<&str> = checked.diagnostics.iter().map(|d| d.code()).collect();
        assert!(codes.is_empty(), "{text}: {codes:?}");
        let induced = checked.models[0].induced.clone().expect("derived");
        (
            induced.omega.unwrap_or_default(),
            induced.polar.unwrap_or_default(),
            induced.certificate.as_str(),
        )
    }

    const MATRIX: &str = "data Y : [m, n]; factor U : [m, r]; factor V : [n, r];";
    const NONNEG: &str = "data Y : [m, n]; factor U : [m, r] >= 0; factor V : [n, r] >= 0;";
    const HALF_NONNEG: &str = "data Y : [m, n]; factor U : [m, r] >= 0; factor V : [n, r];";
    const NETWORK: &str =
        "data X : [N, 2]; data Y : [N, c]; factor W1 : [2, r]; factor W2 : [c, r];";
    const VARIATIONAL: &str = "inf { Σᵢ θ(wᵢ) : X = Σᵢ φ(wᵢ) }";

    #[test]
    fn closed_forms_and_fallbacks() {
        let col = |a: &str, b: &str| format!("sum(i) {a}(U[:, i]) * {b}(V[:, i])");
        #[rustfmt::skip]
        let rules: Vec<(&str, &str, String, &str, &str, &str)> = vec![
            (MATRIX, "U * V'", col("norm2", "norm2"), "‖X‖_*", "σ_max(Z)", "exact"),
            (MATRIX, "U * V'", col("norm1", "norm1"), "‖X‖₁ = Σⱼₖ |Xⱼₖ|", "maxⱼₖ |Zⱼₖ|", "exact"),
            (MATRIX, "U * V'", col("norm1", "norm2"), "Σⱼ ‖X_(j,:)‖₂", "maxⱼ ‖Z_(j,:)‖₂", "exact"),
            (MATRIX, "U * V'", col("norm2", "norm1"), "Σₖ ‖X_(:,k)‖₂", "maxₖ ‖Z_(:,k)‖₂", "exact"),
            (NONNEG, "U * V'", col("norm1", "norm1"), "Σⱼₖ Xⱼₖ if X ≥ 0, else +∞", "max(0, maxⱼₖ Zⱼₖ)", "exact"),
            // θ = c·‖u‖‖v‖ induces c‖X‖_* and the polar σ_max/c.
            (MATRIX, "U * V'", "sum(i) c * norm2(U[:, i]) * norm2(V[:, i])".into(), "c‖X‖_*", "σ_max(Z)/c", "exact"),
            // Weight decay on two factors: ‖u‖² + ‖v‖² = 2‖u‖‖v‖ at balance.
            (MATRIX, "U * V'", "frob2(U) + frob2(V)".into(), "2‖X‖_*", "σ_max(Z)/2", "exact"),
            (MATRIX, "sum(i) U[:, i] * V[:, i]'", col("norm2", "norm2"), "‖X‖_*", "σ_max(Z)", "exact"),
            // Differently weighted weight decay balances elsewhere: no closed form claimed.
            (MATRIX, "U * V'", "frob2(U) + 3 * frob2(V)".into(), VARIATIONAL, "sup { ⟨Z, u vᵀ⟩ : ‖u‖²_F + 3·‖v‖²_F ≤ 1 }", "heuristic"),
            (MATRIX, "U * V'", col("norm2", "tv"), VARIATIONAL, "sup { ⟨Z, u vᵀ⟩ : ‖u‖₂ ≤ 1, TV(v) ≤ 1 }", "heuristic"),
            (HALF_NONNEG, "U * V'", col("norm2", "norm2"), VARIATIONAL, "sup { ⟨Z, u vᵀ⟩ : ‖u‖₂ ≤ 1, ‖v‖₂ ≤ 1, u ≥ 0 }", "heuristic"),
            (NONNEG, "U * V'", col("norm2", "norm2"), "inf { Σᵢ ‖uᵢ‖₂‖vᵢ‖₂ : X = Σᵢ uᵢvᵢᵀ, uᵢ, vᵢ ≥ 0 }", "max { uᵀZv : ‖u‖₂ ≤ 1, ‖v‖₂ ≤ 1, u, v ≥ 0 }", "heuristic"),
            // A two-layer ReLU network on 2-D inputs: the pattern enumeration is exact.
            (NETWORK, "relu(X * W1) * W2'", "sum(i) norm2(W1[:, i]) * norm2(W2[:, i])".into(), "inf { Σᵢ ‖w1ᵢ‖₂‖w2ᵢ‖₂ : M = Σᵢ relu(X w1ᵢ) w2ᵢᵀ }", "max { ‖Zᵀ relu(X w)‖₂ : ‖w‖₂ ≤ 1 }", "exact"),
        ];
        let mut failures = Vec::new();
        for (decls, map, reg, omega, polar, certificate) in &rules {
            let got = derive(decls, map, reg);
            let want = (omega.to_string(), polar.to_string(), *certificate);
            if got != want {
                failures.push(format!("{map} / {reg}\n  got  {got:?}\n  want {want:?}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }
}
