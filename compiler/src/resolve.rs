//! Name resolution: AST -> HIR.
//!
//! Input: the [`SourceDb`] (root file and imports). Output: a [`hir::Program`] with every name
//! replaced by an index, every call bound to a catalog atom or a user-defined norm, every
//! constant (parameter values, atom parameters, solve options) evaluated and checked against
//! its domain. Never fails: what does not resolve becomes [`hir::Expr::Missing`] and a
//! diagnostic, so later stages see a complete program and stay quiet about the holes.
//!
//! Scopes, innermost first: `sum(i)` index variables; the model's params, data and factors
//! (one namespace); norms defined in the model; norms of the root file and its imports; the
//! catalog's atoms. Dimensions (`m`, `n`, `r`) have a namespace of their own and appear only
//! in shapes.

use std::collections::HashMap;

use hfc_grammar::ast::{self, ExprKind};
use hfc_grammar::{FileId, Span};

use crate::catalog::{self, Domain, Inputs, ParamSpec};
use crate::diagnostics::{self, Diagnostics, did_you_mean, model as model_diag, resolve as diag};
use crate::hir::{
    self, Callee, DataFormat, DataId, DimId, Expr, ExprId, FactorId, IndexItem, IndexKind, Loc,
    NormId, ParamId, Program,
};
use crate::source::SourceDb;

/// Resolves the root file of `db` and the norms it can see.
pub fn resolve(db: &SourceDb, overrides: &[(String, f64)], diags: &mut Diagnostics) -> Program {
    let mut resolver = Resolver {
        db,
        overrides,
        program: Program::default(),
        diags,
        global_norms: HashMap::new(),
    };
    let root = db.root();
    for file in db.imports_in_order(root).into_iter().chain([root]) {
        for item in &db.parsed(file).ast.items {
            if let ast::Item::Norm(def) = item {
                resolver.global_norm(file, def);
            }
        }
    }
    for model in db.parsed(root).ast.models() {
        let model = resolver.model(root, model);
        resolver.program.models.push(model);
    }
    resolver.program
}

struct Resolver<'a> {
    db: &'a SourceDb,
    /// Parameter values set from outside (`hfc run --set NAME=VALUE`): they replace the
    /// declared defaults of the root file's models.
    overrides: &'a [(String, f64)],
    program: Program,
    diags: &'a mut Diagnostics,
    global_norms: HashMap<String, NormId>,
}

/// What a model-level name denotes.
#[derive(Clone, Copy, Debug)]
enum Decl {
    Param(ParamId),
    Data(DataId),
    Factor(FactorId),
}

impl Decl {
    fn what(self) -> &'static str {
        match self {
            Decl::Param(_) => "a parameter",
            Decl::Data(_) => "data",
            Decl::Factor(_) => "a factor",
        }
    }
}

/// The names an expression can see.
enum Scope<'s> {
    /// Inside a model.
    Model {
        names: &'s HashMap<String, (Decl, Span)>,
        norms: &'s HashMap<String, NormId>,
        dims: &'s HashMap<String, DimId>,
    },
    /// Inside a norm definition's body.
    Norm {
        arg: &'s str,
        params: &'s [String],
        norms: &'s HashMap<String, NormId>,
    },
}

impl Scope<'_> {
    fn norms(&self) -> &HashMap<String, NormId> {
        match self {
            Scope::Model { norms, .. } | Scope::Norm { norms, .. } => norms,
        }
    }
}

/// Per-model resolution state.
struct ModelCx {
    model: hir::Model,
    names: HashMap<String, (Decl, Span)>,
    norms: HashMap<String, NormId>,
    dims: HashMap<String, DimId>,
    /// Bound `sum(i)` variables, innermost last.
    bound: Vec<(String, hir::VarId)>,
    /// Whether the expression being resolved is the fit's map.
    in_map: bool,
    factor_in_map: Vec<bool>,
    data_used: Vec<bool>,
}

impl Resolver<'_> {
    fn loc(&self, file: FileId, span: Span) -> Loc {
        Loc { file, span }
    }

    // ---------------------------------------------------------------------------------------
    // Norm definitions

    fn global_norm(&mut self, file: FileId, def: &ast::NormDef) {
        let mut norms = std::mem::take(&mut self.global_norms);
        self.define_norm(file, def, &mut norms);
        self.global_norms = norms;
    }

    /// Resolves a norm definition into `scope`, unless its name is taken (reported).
    fn define_norm(
        &mut self,
        file: FileId,
        def: &ast::NormDef,
        scope: &mut HashMap<String, NormId>,
    ) {
        let name = &def.name;
        if catalog::atom(&name.name).is_some() {
            self.diags
                .push(diag::shadows_atom(file, name.span, &name.name));
            return;
        }
        if let Some(&first) = scope.get(&name.name) {
            let first = &self.program.norms[first];
            let d = if first.file == file {
                diag::duplicate(file, name.span, &name.name, first.name_span)
            } else {
                let first_file = self.db.source(first.file).name().to_string();
                diag::duplicate_elsewhere(file, name.span, &name.name, &first_file)
            };
            self.diags.push(d);
            return;
        }
        let id = self.norm_def(file, def, scope);
        scope.insert(name.name.clone(), id);
    }

    fn norm_def(
        &mut self,
        file: FileId,
        def: &ast::NormDef,
        norms: &HashMap<String, NormId>,
    ) -> NormId {
        let params: Vec<String> = def.params.iter().map(|p| p.name.clone()).collect();
        let scope = Scope::Norm {
            arg: &def.arg.name,
            params: &params,
            norms,
        };
        let body = self.expr(file, &scope, None, &def.body);
        self.program.norms.alloc(hir::NormDef {
            name: def.name.name.clone(),
            name_span: def.name.span,
            file,
            arg: def.arg.name.clone(),
            params,
            body,
            span: def.span,
        })
    }

    // ---------------------------------------------------------------------------------------
    // Models

    fn model(&mut self, file: FileId, ast_model: &ast::Model) -> hir::Model {
        let mut cx = ModelCx {
            model: hir::Model {
                name: ast_model.name.name.clone(),
                name_span: ast_model.name.span,
                file,
                span: ast_model.span,
                dims: Default::default(),
                params: Default::default(),
                data: Default::default(),
                factors: Default::default(),
                vars: Default::default(),
                fit: None,
                loss: None,
                reg: None,
                solve: Vec::new(),
                has_syntax_errors: !ast_model.recovered.is_empty(),
            },
            names: HashMap::new(),
            norms: self.global_norms.clone(),
            dims: HashMap::new(),
            bound: Vec::new(),
            in_map: false,
            factor_in_map: Vec::new(),
            data_used: Vec::new(),
        };
        // Names declared by statements that did not parse resolve to nothing, silently.
        let poisoned: Vec<String> = ast_model
            .recovered
            .iter()
            .filter_map(|r| r.declared.as_ref().map(|d| d.name.clone()))
            .collect();

        // Pass 0: norms local to the model.
        for stmt in &ast_model.stmts {
            if let ast::Stmt::Norm(def) = stmt {
                let mut norms = std::mem::take(&mut cx.norms);
                self.define_norm(file, def, &mut norms);
                cx.norms = norms;
            }
        }
        // Pass 1: data and factors (visible everywhere in the model).
        for stmt in &ast_model.stmts {
            match stmt {
                ast::Stmt::Data(d) => self.data_decl(file, &mut cx, d),
                ast::Stmt::Factor(f) => self.factor_decl(file, &mut cx, f),
                _ => {}
            }
        }
        // Pass 2: parameters, in order (a parameter may use the ones before it).
        for stmt in &ast_model.stmts {
            if let ast::Stmt::Param(p) = stmt {
                self.param_decl(file, &mut cx, p);
            }
        }
        // Pass 3: the statements that use the declarations.
        let mut firsts: HashMap<&'static str, Span> = HashMap::new();
        for stmt in &ast_model.stmts {
            let keyword = match stmt {
                ast::Stmt::Fit(_) => "fit",
                ast::Stmt::Loss(_) => "loss",
                ast::Stmt::Reg(_) => "reg",
                ast::Stmt::Solve(_) => "solve",
                _ => continue,
            };
            if let Some(&first) = firsts.get(keyword) {
                self.diags.push(model_diag::duplicate_statement(
                    file,
                    stmt.span(),
                    keyword,
                    first,
                ));
                continue;
            }
            firsts.insert(keyword, stmt.span());
            match stmt {
                ast::Stmt::Fit(fit) => self.fit_stmt(file, &mut cx, &poisoned, fit),
                ast::Stmt::Loss(loss) => self.loss_stmt(file, &mut cx, &poisoned, loss),
                ast::Stmt::Reg(reg) => {
                    let expr = self.model_expr(file, &mut cx, &poisoned, &reg.expr);
                    cx.model.reg = Some(hir::Reg {
                        expr,
                        span: reg.span,
                    });
                }
                ast::Stmt::Solve(solve) => self.solve_block(file, &mut cx, solve),
                _ => {}
            }
        }
        let seen: Vec<&'static str> = firsts.keys().copied().collect();
        self.finish_model(file, ast_model, cx, &seen)
    }

    /// Reports what is missing or unused once every statement is resolved.
    fn finish_model(
        &mut self,
        file: FileId,
        ast_model: &ast::Model,
        cx: ModelCx,
        seen: &[&str],
    ) -> hir::Model {
        // A statement that was written (even if it did not parse or resolve) is not missing.
        // Nor is one whose keyword was misspelled (`fitt`).
        let broken = |kw: &str| {
            seen.contains(&kw)
                || ast_model.recovered.iter().any(|r| {
                    r.keyword.as_deref() == Some(kw)
                        || r.keyword.is_none()
                            && did_you_mean(
                                &r.word,
                                hfc_grammar::STATEMENT_KEYWORDS.iter().copied(),
                            ) == Some(kw)
                })
        };
        let model = cx.model;
        if model.fit.is_none() && !broken("fit") {
            self.diags
                .push(model_diag::missing_fit(file, model.name_span, &model.name));
        }
        if model.loss.is_none() && !broken("loss") {
            self.diags
                .push(model_diag::missing_loss(file, model.name_span, &model.name));
        }
        if model.reg.is_none() && !broken("reg") {
            self.diags.push(diagnostics::degree::missing_reg(
                file,
                model.name_span,
                &model.name,
            ));
        }
        if let (Some(loss), Some(fit)) = (&model.loss, &model.fit)
            && let Some(mask) = &loss.mask
            && mask.target != fit.target
        {
            self.diags.push(model_diag::mask_target(
                file,
                mask.span,
                &model.data[mask.target].name,
                &model.data[fit.target].name,
                fit.target_span,
            ));
        }
        let map_ok = model
            .fit
            .as_ref()
            .is_some_and(|fit| !contains_missing(&self.program, fit.map));
        // A map without any factor is reported as such (degree analysis), not factor by factor.
        let any_factor = cx.factor_in_map.iter().any(|&used| used);
        if map_ok && any_factor && !model.has_syntax_errors {
            for (id, factor) in model.factors.iter() {
                if !cx.factor_in_map[id.into_raw().into_u32() as usize] {
                    self.diags
                        .push(model_diag::unused_factor(file, factor.span, &factor.name));
                }
            }
        }
        if model.fit.is_some() && !model.has_syntax_errors {
            for (id, data) in model.data.iter() {
                if !cx.data_used[id.into_raw().into_u32() as usize] {
                    self.diags
                        .push(model_diag::unused_data(file, data.span, &data.name));
                }
            }
        }
        model
    }

    /// Reports `name` if it is already declared; a duplicate is then left out entirely.
    fn is_duplicate(&mut self, file: FileId, cx: &ModelCx, name: &ast::Ident) -> bool {
        match cx.names.get(&name.name) {
            Some(&(_, first)) => {
                self.diags
                    .push(diag::duplicate(file, name.span, &name.name, first));
                true
            }
            None => false,
        }
    }

    fn shape(&mut self, cx: &mut ModelCx, shape: &ast::Shape) -> Vec<hir::DimUse> {
        shape
            .dims
            .iter()
            .map(|d| match d {
                ast::DimRef::Named(id) => {
                    let dim = *cx.dims.entry(id.name.clone()).or_insert_with(|| {
                        cx.model.dims.alloc(hir::Dim {
                            name: id.name.clone(),
                            span: id.span,
                        })
                    });
                    hir::DimUse {
                        dim: hir::DimRef::Named(dim),
                        span: id.span,
                    }
                }
                ast::DimRef::Fixed { value, span } => hir::DimUse {
                    dim: hir::DimRef::Fixed(*value),
                    span: *span,
                },
            })
            .collect()
    }

    fn data_decl(&mut self, file: FileId, cx: &mut ModelCx, d: &ast::DataDecl) {
        if self.is_duplicate(file, cx, &d.name) {
            return;
        }
        let shape = self.shape(cx, &d.shape);
        let source = d.source.as_ref().and_then(|s| self.data_source(file, s));
        let id = cx.model.data.alloc(hir::Data {
            name: d.name.name.clone(),
            span: d.name.span,
            shape,
            source,
        });
        cx.data_used.push(false);
        cx.names
            .insert(d.name.name.clone(), (Decl::Data(id), d.name.span));
    }

    fn data_source(&mut self, file: FileId, s: &ast::Source) -> Option<hir::DataSource> {
        if s.loader.name != "load" {
            self.diags.push(diag::bad_source(
                file,
                s.loader.span,
                format!("unknown data loader `{}`", s.loader.name),
                "data is read with `load(\"file\")`",
            ));
            return None;
        }
        match DataFormat::from_path(&s.path.value) {
            Some(format) => Some(hir::DataSource {
                path: s.path.value.clone(),
                format,
                span: s.span,
            }),
            None => {
                self.diags.push(diag::bad_source(
                    file,
                    s.path.span,
                    format!("cannot read `{}`: unknown file format", s.path.value),
                    "hfc reads `.npy`, `.npz`, `.csv` and `.mtx` (Matrix Market) files",
                ));
                None
            }
        }
    }

    fn factor_decl(&mut self, file: FileId, cx: &mut ModelCx, f: &ast::FactorDecl) {
        if self.is_duplicate(file, cx, &f.name) {
            return;
        }
        let shape = self.shape(cx, &f.shape);
        let id = cx.model.factors.alloc(hir::Factor {
            name: f.name.name.clone(),
            span: f.name.span,
            shape,
            nonneg: f.nonneg,
        });
        cx.factor_in_map.push(false);
        cx.names
            .insert(f.name.name.clone(), (Decl::Factor(id), f.name.span));
    }

    fn param_decl(&mut self, file: FileId, cx: &mut ModelCx, p: &ast::ParamDecl) {
        if self.is_duplicate(file, cx, &p.name) {
            return;
        }
        let expr = self.model_expr(file, cx, &[], &p.value);
        let mut value = self.constant(file, &cx.model, expr, "a parameter's value");
        if let Some((_, v)) = self.overrides.iter().find(|(n, _)| *n == p.name.name) {
            value = Some(*v);
        }
        let id = cx.model.params.alloc(hir::Param {
            name: p.name.name.clone(),
            span: p.name.span,
            expr,
            value,
        });
        cx.names
            .insert(p.name.name.clone(), (Decl::Param(id), p.name.span));
    }

    fn fit_stmt(
        &mut self,
        file: FileId,
        cx: &mut ModelCx,
        poisoned: &[String],
        fit: &ast::FitStmt,
    ) {
        let target = self.data_ref(file, cx, poisoned, &fit.target, "the fit's target");
        cx.in_map = true;
        let map = self.model_expr(file, cx, poisoned, &fit.map);
        cx.in_map = false;
        if let Some(target) = target {
            cx.model.fit = Some(hir::Fit {
                target,
                target_span: fit.target.span,
                map,
                span: fit.span,
            });
        }
    }

    /// A name that must denote data.
    fn data_ref(
        &mut self,
        file: FileId,
        cx: &mut ModelCx,
        poisoned: &[String],
        name: &ast::Ident,
        role: &str,
    ) -> Option<DataId> {
        match cx.names.get(&name.name) {
            Some(&(Decl::Data(id), _)) => {
                cx.data_used[id.into_raw().into_u32() as usize] = true;
                Some(id)
            }
            Some(&(other, _)) => {
                self.diags.push(diag::wrong_kind(
                    file,
                    name.span,
                    &name.name,
                    other.what(),
                    "data",
                    format!("{role} must be declared with `data`"),
                ));
                None
            }
            None if poisoned.contains(&name.name) => None,
            None => {
                let candidates = cx
                    .names
                    .iter()
                    .filter_map(|(n, (d, _))| matches!(d, Decl::Data(_)).then_some(n.as_str()));
                let suggestion = did_you_mean(&name.name, candidates);
                self.diags.push(diag::unknown_name(
                    file, name.span, &name.name, suggestion, None,
                ));
                None
            }
        }
    }

    fn loss_stmt(
        &mut self,
        file: FileId,
        cx: &mut ModelCx,
        poisoned: &[String],
        loss: &ast::LossStmt,
    ) {
        let Some(entry) = catalog::loss(&loss.name.name) else {
            let known: Vec<&str> = catalog::LOSSES.iter().map(|l| l.name).collect();
            let suggestion = did_you_mean(&loss.name.name, known.iter().copied());
            self.diags.push(diag::unknown_loss(
                file,
                loss.name.span,
                &loss.name.name,
                suggestion,
                &known,
            ));
            return;
        };
        let names: Vec<String> = entry.params.iter().map(|p| p.name.to_string()).collect();
        let bound = self.in_model_scope(cx, poisoned, |this, scope, state| {
            this.bind_args(
                file,
                scope,
                Some(state),
                entry.name,
                Inputs::Exactly(0),
                entry.params,
                &names,
                &loss.args,
                &[],
                loss.span,
            )
        });
        let params = bound
            .params
            .iter()
            .map(|&e| self.program.const_value(&cx.model, e).unwrap_or(f64::NAN))
            .collect();
        let mask = loss.mask.as_ref().and_then(|m| {
            if m.kind.name != catalog::OBSERVED_MASK {
                let suggestion = did_you_mean(&m.kind.name, [catalog::OBSERVED_MASK]);
                self.diags.push(diag::unknown_function(
                    file,
                    m.kind.span,
                    &m.kind.name,
                    suggestion.or(Some(catalog::OBSERVED_MASK)),
                ));
                return None;
            }
            let target = self.data_ref(file, cx, poisoned, &m.target, "a mask's target")?;
            Some(hir::Mask {
                target,
                span: m.span,
            })
        });
        cx.model.loss = Some(hir::Loss {
            loss: entry,
            name_span: loss.name.span,
            params,
            mask,
            span: loss.span,
        });
    }

    fn solve_block(&mut self, file: FileId, cx: &mut ModelCx, solve: &ast::SolveBlock) {
        let known: Vec<&str> = catalog::SOLVE_OPTIONS.iter().map(|o| o.name).collect();
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        for opt in &solve.options {
            let Some(entry) = catalog::solve_option(&opt.name.name) else {
                let suggestion = did_you_mean(&opt.name.name, known.iter().copied());
                self.diags.push(diag::unknown_option(
                    file,
                    opt.name.span,
                    &opt.name.name,
                    suggestion,
                    &known,
                ));
                continue;
            };
            if let Some(&first) = seen.get(entry.name) {
                self.diags
                    .push(diag::duplicate(file, opt.name.span, entry.name, first));
                continue;
            }
            seen.insert(entry.name, opt.name.span);
            let is_bound = opt.relation == ast::Relation::Le;
            if is_bound != entry.bound {
                let value = self.db.source(file).slice(opt.value.span).to_string();
                self.diags.push(diag::wrong_relation(
                    file,
                    opt.span,
                    entry.name,
                    &value,
                    entry.bound,
                ));
                continue;
            }
            let expr = self.model_expr(file, cx, &[], &opt.value);
            let what = format!("`{}`", entry.name);
            let domain = (entry.domain, entry.doc);
            let Some(value) = self.constant_in(file, &cx.model, expr, &what, domain) else {
                continue;
            };
            cx.model.solve.push(hir::SolveSetting {
                option: entry,
                value,
                span: opt.span,
            });
        }
    }

    /// The value of a constant expression; reports one that is not.
    fn constant(
        &mut self,
        file: FileId,
        model: &hir::Model,
        expr: ExprId,
        what: &str,
    ) -> Option<f64> {
        if matches!(self.program.exprs[expr], Expr::Missing) {
            return None;
        }
        if !is_constant(&self.program, expr) {
            self.diags
                .push(diag::not_constant(file, self.program.span(expr), what));
            return None;
        }
        self.program.const_value(model, expr)
    }

    /// As [`Resolver::constant`], and reports a value outside `domain`.
    fn constant_in(
        &mut self,
        file: FileId,
        model: &hir::Model,
        expr: ExprId,
        what: &str,
        (domain, doc): (Domain, &str),
    ) -> Option<f64> {
        let value = self.constant(file, model, expr, what)?;
        if domain.contains(value) {
            return Some(value);
        }
        self.diags.push(diag::bad_value(
            file,
            self.program.span(expr),
            what,
            value,
            &domain.describe(),
            doc,
        ));
        None
    }

    /// Resolves an expression of the model.
    fn model_expr(
        &mut self,
        file: FileId,
        cx: &mut ModelCx,
        poisoned: &[String],
        expr: &ast::Expr,
    ) -> ExprId {
        self.in_model_scope(cx, poisoned, |this, scope, state| {
            this.expr(file, scope, Some(state), expr)
        })
    }

    /// Runs `f` with the model's names in scope. The scope borrows the name tables while the
    /// expression state borrows the rest of the model mutably, so the tables are moved out
    /// for the call and back after it.
    fn in_model_scope<R>(
        &mut self,
        cx: &mut ModelCx,
        poisoned: &[String],
        f: impl FnOnce(&mut Self, &Scope<'_>, &mut ExprState<'_>) -> R,
    ) -> R {
        let names = std::mem::take(&mut cx.names);
        let norms = std::mem::take(&mut cx.norms);
        let dims = std::mem::take(&mut cx.dims);
        let scope = Scope::Model {
            names: &names,
            norms: &norms,
            dims: &dims,
        };
        let mut state = ExprState { cx, poisoned };
        let out = f(self, &scope, &mut state);
        cx.names = names;
        cx.norms = norms;
        cx.dims = dims;
        out
    }

    // ---------------------------------------------------------------------------------------
    // Expressions

    fn expr(
        &mut self,
        file: FileId,
        scope: &Scope<'_>,
        mut state: Option<&mut ExprState<'_>>,
        expr: &ast::Expr,
    ) -> ExprId {
        let loc = self.loc(file, expr.span);
        let resolved = match &expr.kind {
            ExprKind::Number(v) => Expr::Number(*v),
            ExprKind::Name(name) => self.name(file, scope, state, name, expr.span),
            ExprKind::Call {
                callee,
                args,
                params,
            } => self.call(file, scope, state, callee, args, params, expr.span),
            ExprKind::Binary {
                op,
                op_span,
                lhs,
                rhs,
            } => {
                let lhs = self.expr(file, scope, state.as_deref_mut(), lhs);
                let rhs = self.expr(file, scope, state, rhs);
                Expr::Binary {
                    op: *op,
                    lhs,
                    rhs,
                    op_span: *op_span,
                }
            }
            ExprKind::Neg(e) => Expr::Neg(self.expr(file, scope, state, e)),
            ExprKind::Transpose(e) => Expr::Transpose(self.expr(file, scope, state, e)),
            ExprKind::Sum { index, body } => match state {
                Some(st) => {
                    if let Scope::Model { names, .. } = scope
                        && let Some(&(_, first)) = names.get(&index.name)
                    {
                        self.diags
                            .push(diag::duplicate(file, index.span, &index.name, first));
                    }
                    let var = st.cx.model.vars.alloc(hir::IndexVar {
                        name: index.name.clone(),
                        span: index.span,
                    });
                    st.cx.bound.push((index.name.clone(), var));
                    let body = self.expr(file, scope, Some(&mut *st), body);
                    st.cx.bound.pop();
                    Expr::Sum { var, body }
                }
                None => {
                    self.diags.push(diag::wrong_kind(
                        file,
                        index.span,
                        &index.name,
                        "a subnetwork index",
                        "allowed in a norm definition",
                        "a norm applies to one column; sum over `i` where the norm is used".into(),
                    ));
                    self.expr(file, scope, None, body);
                    Expr::Missing
                }
            },
            ExprKind::Index { base, items } => {
                let base = self.expr(file, scope, state.as_deref_mut(), base);
                let items: Option<Vec<IndexItem>> = items
                    .iter()
                    .map(|item| self.index_item(file, scope, state.as_deref_mut(), item))
                    .collect::<Vec<_>>()
                    .into_iter()
                    .collect();
                match items {
                    Some(items) => Expr::Index { base, items },
                    None => Expr::Missing,
                }
            }
            ExprKind::Error => Expr::Missing,
        };
        self.program.alloc(resolved, loc)
    }

    fn index_item(
        &mut self,
        file: FileId,
        scope: &Scope<'_>,
        state: Option<&mut ExprState<'_>>,
        item: &ast::IndexItem,
    ) -> Option<IndexItem> {
        let span = item.span();
        let kind = match item {
            ast::IndexItem::All(_) => IndexKind::All,
            ast::IndexItem::Fixed { value, .. } => IndexKind::Fixed(*value),
            ast::IndexItem::Var(id) => {
                let bound = state
                    .as_ref()
                    .and_then(|st| st.cx.bound.iter().rev().find(|(n, _)| *n == id.name))
                    .map(|&(_, v)| v);
                match bound {
                    Some(var) => IndexKind::Var(var),
                    None => {
                        let hint = match scope {
                            Scope::Model { .. } => format!(
                                "bind it with `sum({0})`: `sum({0}) norm2(U[:, {0}])`",
                                id.name
                            ),
                            Scope::Norm { arg, .. } => format!(
                                "a norm sees one vector `{arg}`; index where the norm is used"
                            ),
                        };
                        self.diags.push(diag::unknown_name(
                            file,
                            id.span,
                            &id.name,
                            None,
                            Some(hint),
                        ));
                        return None;
                    }
                }
            }
        };
        Some(IndexItem { kind, span })
    }

    fn name(
        &mut self,
        file: FileId,
        scope: &Scope<'_>,
        state: Option<&mut ExprState<'_>>,
        name: &str,
        span: Span,
    ) -> Expr {
        match scope {
            Scope::Norm { arg, params, .. } => {
                if name == *arg {
                    return Expr::NormArg;
                }
                if let Some(k) = params.iter().position(|p| p == name) {
                    return Expr::NormParam(k as u32);
                }
                let candidates = std::iter::once(*arg).chain(params.iter().map(String::as_str));
                let suggestion = did_you_mean(name, candidates);
                self.diags.push(diag::unknown_name(
                    file,
                    span,
                    name,
                    suggestion,
                    Some(format!(
                        "a norm definition sees its argument `{arg}` and its parameters{}",
                        if params.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", params.join(", "))
                        }
                    )),
                ));
                Expr::Missing
            }
            Scope::Model { names, dims, .. } => {
                let Some(st) = state else {
                    return Expr::Missing;
                };
                if st.cx.bound.iter().any(|(n, _)| n == name) {
                    self.diags.push(diag::wrong_kind(
                        file,
                        span,
                        name,
                        "an index",
                        "a value",
                        format!("use it to index a factor: `U[:, {name}]`"),
                    ));
                    return Expr::Missing;
                }
                match names.get(name) {
                    Some(&(Decl::Param(p), _)) => Expr::Param(p),
                    Some(&(Decl::Data(d), _)) => {
                        st.cx.data_used[d.into_raw().into_u32() as usize] = true;
                        Expr::Data(d)
                    }
                    Some(&(Decl::Factor(f), _)) => {
                        if st.cx.in_map {
                            st.cx.factor_in_map[f.into_raw().into_u32() as usize] = true;
                        }
                        Expr::Factor(f)
                    }
                    None if st.poisoned.iter().any(|p| p == name) => Expr::Missing,
                    None => {
                        let hint = if dims.contains_key(name) {
                            Some(format!(
                                "`{name}` is a dimension; dimensions appear only in shapes such as `[{name}, r]`"
                            ))
                        } else {
                            None
                        };
                        let suggestion = did_you_mean(name, names.keys().map(String::as_str));
                        self.diags
                            .push(diag::unknown_name(file, span, name, suggestion, hint));
                        Expr::Missing
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        file: FileId,
        scope: &Scope<'_>,
        mut state: Option<&mut ExprState<'_>>,
        callee: &ast::Ident,
        args: &[ast::Arg],
        params: &[ast::Arg],
        span: Span,
    ) -> Expr {
        let target = if let Some(&norm) = scope.norms().get(&callee.name) {
            Some(Callee::Norm(norm))
        } else {
            catalog::atom(&callee.name).map(Callee::Atom)
        };
        let Some(target) = target else {
            if catalog::loss(&callee.name).is_some() {
                self.diags.push(diag::wrong_kind(
                    file,
                    callee.span,
                    &callee.name,
                    "a loss",
                    "a function",
                    format!("use it in the loss statement: `loss {};`", callee.name),
                ));
            } else {
                let candidates = catalog::ATOMS
                    .iter()
                    .map(|a| a.name)
                    .chain(scope.norms().keys().map(String::as_str));
                let suggestion = did_you_mean(&callee.name, candidates);
                self.diags.push(diag::unknown_function(
                    file,
                    callee.span,
                    &callee.name,
                    suggestion,
                ));
            }
            // Resolve the arguments anyway: their own mistakes deserve reporting.
            for arg in args.iter().chain(params) {
                self.expr(file, scope, state.as_deref_mut(), &arg.value);
            }
            return Expr::Missing;
        };
        let (inputs_spec, param_specs): (Inputs, Vec<ParamSpec>) = match target {
            Callee::Atom(atom) => (atom.inputs, atom.params.to_vec()),
            Callee::Norm(norm) => (
                Inputs::Exactly(1),
                self.program.norms[norm]
                    .params
                    .iter()
                    // Any constant here; their sign is checked against the norm's body in
                    // `degree`, which knows which of them weigh a norm.
                    .map(|_| ParamSpec {
                        name: "",
                        default: None,
                        domain: Domain::Any,
                        doc: "a parameter of a user-defined norm",
                    })
                    .collect(),
            ),
        };
        // User norms name their parameters in their definition.
        let param_names: Vec<String> = match target {
            Callee::Atom(atom) => atom.params.iter().map(|p| p.name.to_string()).collect(),
            Callee::Norm(norm) => self.program.norms[norm].params.clone(),
        };
        let specs: Vec<ParamSpec> = param_specs;
        let bound = self.bind_args(
            file,
            scope,
            state,
            &callee.name,
            inputs_spec,
            &specs,
            &param_names,
            args,
            params,
            span,
        );
        if !bound.ok {
            return Expr::Missing;
        }
        Expr::Call {
            callee: target,
            inputs: bound.inputs,
            params: bound.params,
        }
    }

    /// Binds a call's arguments to the callee's inputs and parameters.
    ///
    /// Positional arguments before `;` fill the inputs, then the parameters in order; those
    /// after `;` fill parameters; `name = value` sets one by name; a bare flag word
    /// (`adaptive`) sets that flag. Parameters must be constants in their domain; defaults
    /// are filled in as number expressions located at the call.
    #[allow(clippy::too_many_arguments)]
    fn bind_args(
        &mut self,
        file: FileId,
        scope: &Scope<'_>,
        mut state: Option<&mut ExprState<'_>>,
        callee: &str,
        inputs_spec: Inputs,
        specs: &[ParamSpec],
        param_names: &[String],
        args: &[ast::Arg],
        params: &[ast::Arg],
        span: Span,
    ) -> Bound {
        let mut ok = true;
        let flags: Vec<bool> = specs.iter().map(|s| s.domain == Domain::Flag).collect();
        let signature = signature(callee, inputs_spec, param_names, &flags);
        let mut inputs = Vec::new();
        let mut values: Vec<Option<ExprId>> = vec![None; specs.len()];
        let mut next_param = 0usize;
        let input_count = match inputs_spec {
            Inputs::Exactly(k) => k,
            Inputs::AtLeast(_) => args.iter().filter(|a| a.name.is_none()).count(),
        };
        let mut extra = Vec::new();
        let positional = args.iter().filter(|a| a.name.is_none());
        for (k, arg) in positional.enumerate() {
            // A bare word naming a flag parameter sets it.
            if let ExprKind::Name(word) = &arg.value.kind
                && let Some(j) = specs
                    .iter()
                    .zip(param_names)
                    .position(|(s, n)| s.domain == Domain::Flag && n == word)
            {
                values[j] = Some(
                    self.program
                        .alloc(Expr::Number(1.0), self.loc(file, arg.span)),
                );
                continue;
            }
            if k < input_count {
                inputs.push(self.expr(file, scope, state.as_deref_mut(), &arg.value));
            } else {
                extra.push(arg);
            }
        }
        for arg in extra
            .into_iter()
            .chain(params.iter().filter(|a| a.name.is_none()))
        {
            while next_param < specs.len()
                && (values[next_param].is_some() || specs[next_param].domain == Domain::Flag)
            {
                next_param += 1;
            }
            if next_param >= specs.len() {
                self.diags.push(diag::arity(
                    file,
                    arg.span,
                    format!("too many arguments to `{callee}`"),
                    "one too many",
                    signature.clone(),
                ));
                ok = false;
                break;
            }
            values[next_param] = Some(self.expr(file, scope, state.as_deref_mut(), &arg.value));
            next_param += 1;
        }
        for arg in args.iter().chain(params).filter(|a| a.name.is_some()) {
            let name = arg.name.as_ref().map(|n| n.name.as_str()).unwrap_or("");
            match param_names.iter().position(|n| n == name) {
                Some(j) if values[j].is_none() => {
                    values[j] = Some(self.expr(file, scope, state.as_deref_mut(), &arg.value));
                }
                Some(_) => {
                    self.diags.push(diag::arity(
                        file,
                        arg.span,
                        format!("`{name}` is given twice to `{callee}`"),
                        "given again here",
                        signature.clone(),
                    ));
                    ok = false;
                }
                None => {
                    let accepted: Vec<&str> = param_names.iter().map(String::as_str).collect();
                    let name_span = arg.name.as_ref().map(|n| n.span).unwrap_or(arg.span);
                    self.diags.push(diag::unknown_argument(
                        file, name_span, callee, name, &accepted,
                    ));
                    ok = false;
                }
            }
        }
        if !inputs_spec.accepts(inputs.len()) {
            let wanted = match inputs_spec {
                Inputs::Exactly(k) => format!("{k}"),
                Inputs::AtLeast(k) => format!("at least {k}"),
            };
            self.diags.push(diag::arity(
                file,
                span,
                format!(
                    "`{callee}` takes {wanted} input{}, but {} {} given",
                    if wanted == "1" { "" } else { "s" },
                    inputs.len(),
                    if inputs.len() == 1 { "was" } else { "were" }
                ),
                "in this call",
                signature.clone(),
            ));
            ok = false;
        }
        let mut params_out = Vec::with_capacity(specs.len());
        for (j, spec) in specs.iter().enumerate() {
            let expr = match values[j] {
                Some(e) => e,
                None => match spec.default {
                    Some(v) => self.program.alloc(Expr::Number(v), self.loc(file, span)),
                    None => {
                        if ok {
                            self.diags.push(diag::arity(
                                file,
                                span,
                                format!("`{callee}` needs its parameter `{}`", param_names[j]),
                                "in this call",
                                signature.clone(),
                            ));
                        }
                        ok = false;
                        continue;
                    }
                },
            };
            // Constants only, in their domain; a user norm's parameters may be any constant
            // here (their sign is checked against the norm's body in `degree`), and in a norm
            // body they are the body's own parameters.
            let what = format!("`{}` of `{callee}`", param_names[j]);
            let domain = (spec.domain, spec.doc);
            let valid = match state.as_deref() {
                Some(st) => self
                    .constant_in(file, &st.cx.model, expr, &what, domain)
                    .is_some(),
                None => {
                    !matches!(self.program.exprs[expr], Expr::Missing)
                        && is_constant(&self.program, expr)
                }
            };
            ok &= valid;
            params_out.push(expr);
        }
        Bound {
            inputs,
            params: params_out,
            ok,
        }
    }
}

/// Mutable state threaded through the resolution of a model's expression.
struct ExprState<'c> {
    cx: &'c mut ModelCx,
    poisoned: &'c [String],
}

/// A call's bound arguments.
struct Bound {
    inputs: Vec<ExprId>,
    params: Vec<ExprId>,
    ok: bool,
}

/// Whether an expression has a hole (something that did not resolve).
fn contains_missing(program: &Program, expr: ExprId) -> bool {
    match &program.exprs[expr] {
        Expr::Missing => true,
        Expr::Neg(e) | Expr::Transpose(e) => contains_missing(program, *e),
        Expr::Sum { body, .. } => contains_missing(program, *body),
        Expr::Index { base, .. } => contains_missing(program, *base),
        Expr::Binary { lhs, rhs, .. } => {
            contains_missing(program, *lhs) || contains_missing(program, *rhs)
        }
        Expr::Call { inputs, params, .. } => inputs
            .iter()
            .chain(params)
            .any(|&e| contains_missing(program, e)),
        _ => false,
    }
}

/// Whether an expression is built from numbers, parameters and arithmetic only.
fn is_constant(program: &Program, expr: ExprId) -> bool {
    match &program.exprs[expr] {
        Expr::Number(_) | Expr::Param(_) | Expr::NormParam(_) => true,
        Expr::Neg(e) => is_constant(program, *e),
        Expr::Binary { lhs, rhs, .. } => is_constant(program, *lhs) && is_constant(program, *rhs),
        _ => false,
    }
}

/// `name(x; a, b)` for help texts.
fn signature(callee: &str, inputs: Inputs, params: &[String], flags: &[bool]) -> String {
    let params: Vec<String> = params
        .iter()
        .zip(flags.iter().chain(std::iter::repeat(&false)))
        .map(|(p, &flag)| if flag { format!("[{p}]") } else { p.clone() })
        .collect();
    let mut parts: Vec<String> = match inputs {
        Inputs::Exactly(0) => Vec::new(),
        Inputs::Exactly(1) => vec!["x".into()],
        Inputs::Exactly(k) => (1..=k).map(|i| format!("x{i}")).collect(),
        Inputs::AtLeast(k) => {
            let mut v: Vec<String> = (1..=k).map(|i| format!("x{i}")).collect();
            v.push("...".into());
            v
        }
    };
    if !params.is_empty() {
        let list = params.join(", ");
        if parts.is_empty() {
            parts.push(list);
        } else {
            let inputs = parts.join(", ");
            return format!("{callee}({inputs}; {list})");
        }
    }
    format!("{callee}({})", parts.join(", "))
}
