//! The registry of diagnostic codes.
//!
//! Codes are part of the command-line contract (`hfc check --json` prints them and scripts
//! match on them): never rename or reuse one; add new ones. Each is `hfc::<stage>::<fact>`.

use super::Severity;

/// A diagnostic code with its severity and a one-line summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Code {
    /// `hfc::<stage>::<fact>`.
    pub name: &'static str,
    /// Error or warning.
    pub severity: Severity,
    /// What it means, in one line (for `hfc atoms --codes` and the docs).
    pub summary: &'static str,
}

macro_rules! codes {
    ($($id:ident = $name:literal, $sev:ident, $summary:literal;)*) => {
        $(
            #[doc = $summary]
            pub const $id: Code = Code { name: $name, severity: Severity::$sev, summary: $summary };
        )*
        /// Every code, in registry order.
        pub const ALL: &[Code] = &[$($id),*];
    };
}

codes! {
    SYNTAX_UNEXPECTED = "hfc::syntax::unexpected_token", Error,
        "something other than what the grammar allows at this point";
    SYNTAX_UNKNOWN_STATEMENT = "hfc::syntax::unknown_statement", Error,
        "a statement in a model starts with a word that begins no statement";
    SYNTAX_UNKNOWN_ITEM = "hfc::syntax::unknown_item", Error,
        "text at the top level that is not `model`, `norm` or `import`";
    SYNTAX_OUTSIDE_MODEL = "hfc::syntax::statement_outside_model", Error,
        "a model statement written outside any `model { }` block";
    SYNTAX_UNCLOSED = "hfc::syntax::unclosed_block", Error,
        "a `{` without its `}`";
    SYNTAX_UNTERMINATED_COMMENT = "hfc::syntax::unterminated_comment", Error,
        "a `/*` comment without `*/`";
    SYNTAX_NUMBER = "hfc::syntax::number_out_of_range", Error,
        "a number too large for a 64-bit float, or an integer too large";
    SYNTAX_TOO_COMPLEX = "hfc::syntax::too_complex", Error,
        "an expression nested too deeply or with too many operands";

    RESOLVE_UNKNOWN_NAME = "hfc::resolve::unknown_name", Error,
        "a name that no declaration introduces";
    RESOLVE_UNKNOWN_FUNCTION = "hfc::resolve::unknown_function", Error,
        "a call of something that is neither an atom nor a defined norm";
    RESOLVE_UNKNOWN_LOSS = "hfc::resolve::unknown_loss", Error,
        "a loss that the catalog does not have";
    RESOLVE_DUPLICATE = "hfc::resolve::duplicate_definition", Error,
        "a name declared twice";
    RESOLVE_WRONG_KIND = "hfc::resolve::wrong_kind", Error,
        "a name used as something it is not (a factor where data is due, ...)";
    RESOLVE_ARITY = "hfc::resolve::arity", Error,
        "a call with the wrong number of inputs or parameters";
    RESOLVE_UNKNOWN_ARGUMENT = "hfc::resolve::unknown_argument", Error,
        "a named argument that the callee does not take";
    RESOLVE_NOT_CONSTANT = "hfc::resolve::not_constant", Error,
        "a value that must be a constant depends on data or factors";
    RESOLVE_BAD_VALUE = "hfc::resolve::bad_value", Error,
        "a constant outside the values its parameter or option accepts";
    RESOLVE_IMPORT = "hfc::resolve::import_not_found", Error,
        "an `import` whose file cannot be read";
    SOLVE_UNKNOWN_OPTION = "hfc::solve::unknown_option", Error,
        "a `solve { }` option that does not exist";
    SOLVE_RELATION = "hfc::solve::wrong_relation", Error,
        "a bound written as a value (`rank = 5`) or a value written as a bound";
    DATA_SOURCE = "hfc::data::bad_source", Error,
        "a data source that hfc cannot read (unknown loader or file format)";

    MODEL_MISSING_FIT = "hfc::model::missing_fit", Error,
        "a model without a `fit` statement";
    MODEL_MISSING_LOSS = "hfc::model::missing_loss", Error,
        "a model without a `loss` statement";
    MODEL_DUPLICATE_STATEMENT = "hfc::model::duplicate_statement", Error,
        "a second `fit`, `loss`, `reg` or `solve` in one model";
    MODEL_MASK_TARGET = "hfc::model::mask_target", Error,
        "`on observed(Z)` where Z is not the data being fitted";
    MODEL_UNUSED_FACTOR = "hfc::model::unused_factor", Warning,
        "a factor that the map does not use";
    MODEL_UNUSED_DATA = "hfc::model::unused_data", Warning,
        "data that nothing uses";

    SHAPE_MISMATCH = "hfc::shape::mismatch", Error,
        "shapes that do not agree (a product, a sum, the fit)";
    SHAPE_INDEX = "hfc::shape::index", Error,
        "an index that does not fit the indexed expression";
    SHAPE_NOT_SCALAR = "hfc::shape::not_scalar", Error,
        "a regularizer or constant that is not a scalar";
    SHAPE_NO_SIZE_INDEX = "hfc::shape::no_size_index", Error,
        "no dimension of the factors is free to grow";
    SHAPE_AMBIGUOUS_SIZE_INDEX = "hfc::shape::ambiguous_size_index", Error,
        "several dimensions of the factors are free; only the size index may be";

    DEGREE_MAP_NOT_HOMOGENEOUS = "hfc::degree::map_not_homogeneous", Error,
        "the factorization map is not positively homogeneous";
    DEGREE_REG_NOT_HOMOGENEOUS = "hfc::degree::reg_not_homogeneous", Error,
        "the regularizer is not positively homogeneous";
    DEGREE_MISMATCH = "hfc::degree::mismatch", Warning,
        "the regularizer's degree differs from the map's: spurious local minima can exist";
    DEGREE_CONSTANT_MAP = "hfc::degree::constant_map", Error,
        "the map does not depend on any factor";
    DEGREE_BAD_EXPONENT = "hfc::degree::bad_exponent", Error,
        "an exponent that is not a positive integer constant";
    DEGREE_NOT_A_NORM = "hfc::degree::not_a_norm", Error,
        "a `norm` definition that is not a nonnegative combination of norms of its argument";

    REG_MISSING = "hfc::reg::missing", Warning,
        "no regularizer: nothing limits the size r";
    REG_NOT_PARALLEL = "hfc::reg::not_parallel", Warning,
        "the regularizer is not a sum over the subnetwork index";
    REG_NEGATIVE = "hfc::reg::negative", Error,
        "the regularizer can be negative";

    CONVEX_NO_POLAR = "hfc::convex::no_polar_oracle", Warning,
        "hfc has no solver for this map's polar problem: no certificate";

    // Codes of `hfc run` and of reading data (produced by the runtime tests, not the UI corpus).
    RUN_UNSUPPORTED = "hfc::run::unsupported", Error,
        "a model `hfc check` accepts but the runtime cannot run yet";
    RUN_FIXED_SIZE = "hfc::run::fixed_size_required", Error,
        "a model whose regularizer does not limit the size r run without a fixed size";
    DATA_SHAPE = "hfc::data::shape_mismatch", Error,
        "a data file whose shape differs from the declaration, or from other data's";
    DATA_FILE = "hfc::data::bad_file", Error,
        "a data file that is missing, malformed, non-finite or empty";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_namespaced() {
        let mut names: Vec<&str> = ALL.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ALL.len(), "a code is registered twice");
        for code in ALL {
            let parts: Vec<&str> = code.name.split("::").collect();
            assert_eq!(parts.len(), 3, "{}", code.name);
            assert_eq!(parts[0], "hfc");
            assert!(
                parts[2].chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{}",
                code.name
            );
            assert!(!code.summary.is_empty());
        }
    }
}
