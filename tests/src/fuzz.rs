//! Robustness: the parser and the whole `check` pipeline (and the rendering of what it
//! reports) never panic, on random text, on token soup, and on mutations of every shipped
//! model and of every file of the golden corpus. 4,000 + 3,000 + 4,000 cases by default;
//! `PROPTEST_CASES` sets the count of each strategy.

use hfc::NoFiles;
use hfc::render::{self, Style};
use proptest::prelude::*;

/// Runs everything a user can trigger with a file: check, render, explain, JSON.
fn run_everything(text: &str) {
    let checked = hfc::check("fuzz.hfm", text, &mut NoFiles);
    for d in checked.diagnostics.iter() {
        let span = d.span();
        assert!(
            span.start <= span.end && span.end as usize <= text.len(),
            "{}",
            d.code()
        );
        assert!(
            d.help().is_some() && d.note().is_some(),
            "{} lacks help or note",
            d.code()
        );
    }
    let _ = render::render_all(&checked.db, &checked.diagnostics, Style::plain());
    for d in checked.diagnostics.iter() {
        let _ = render::to_json(&checked.db, d);
    }
    for model in &checked.models {
        let _ = hfc::explain::to_text(model);
        let _ = hfc::explain::to_json(model);
    }
}

fn seeds() -> &'static [String] {
    static SEEDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    SEEDS.get_or_init(read_seeds)
}

fn read_seeds() -> Vec<String> {
    let mut texts: Vec<String> = hfc_stdlib::FILES
        .iter()
        .map(|(_, t)| t.to_string())
        .collect();
    // The examples and the golden corpus: valid models and every kind of mistake.
    let mut folders = vec![hfc_tests::repo_dir().join("examples")];
    if let Ok(stages) = std::fs::read_dir(hfc_tests::crate_dir().join("ui")) {
        folders.extend(stages.flatten().map(|e| e.path()));
    }
    for folder in folders {
        let Ok(dir) = std::fs::read_dir(folder) else {
            continue;
        };
        for entry in dir.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "hfm")
                && let Ok(text) = std::fs::read_to_string(&path)
            {
                texts.push(text);
            }
        }
    }
    texts.sort();
    texts
}

const TOKENS: &[&str] = &[
    "model",
    "param",
    "data",
    "factor",
    "fit",
    "loss",
    "reg",
    "solve",
    "norm",
    "import",
    "sum",
    "on",
    "observed",
    "load",
    "U",
    "V",
    "W1",
    "X",
    "Y",
    "i",
    "r",
    "m",
    "n",
    "lambda",
    "norm1",
    "norm2",
    "norminf",
    "tv",
    "frob2",
    "relu",
    "sigmoid",
    "cp",
    "dropout",
    "adaptive",
    "nonneg",
    "squared",
    "huber",
    "rank",
    "tol",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ";",
    ",",
    ":",
    "=",
    "~",
    "'",
    "*",
    "+",
    "-",
    "/",
    "^",
    ">=",
    "<=",
    "0",
    "1",
    "2.5",
    "1e-3",
    "1e999",
    "\"Y.npy\"",
    "\"",
    "//",
    "/*",
    "*/",
    "\n",
    " ",
    "λ",
    "é",
];

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(4_000))]
    #[test]
    fn random_text_never_panics(text in "[ -~\n\tλ∑]{0,300}") {
        run_everything(&text);
    }
}

proptest! {
    #![proptest_config(cases(3_000))]
    #[test]
    fn token_soup_never_panics(picks in prop::collection::vec(0..TOKENS.len(), 0..120)) {
        let text: Vec<&str> = picks.iter().map(|&k| TOKENS[k]).collect();
        run_everything(&text.join(" "));
    }
}

/// One edit of a text: delete a range, insert a token, or duplicate a range.
#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Duplicate(usize, usize),
}

fn apply(text: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for edit in edits {
        let n = chars.len().max(1);
        match *edit {
            Edit::Delete(at, len) => {
                let at = at % n;
                let end = (at + len % 16).min(chars.len());
                chars.drain(at.min(chars.len())..end);
            }
            Edit::Insert(at, token) => {
                let at = (at % n).min(chars.len());
                let token: Vec<char> = TOKENS[token % TOKENS.len()].chars().collect();
                chars.splice(at..at, token);
            }
            Edit::Duplicate(at, len) => {
                let at = (at % n).min(chars.len());
                let end = (at + len % 40).min(chars.len());
                let piece: Vec<char> = chars[at..end].to_vec();
                chars.splice(at..at, piece);
            }
        }
    }
    chars.into_iter().collect()
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Delete(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Insert(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Duplicate(a, b)),
    ]
}

proptest! {
    #![proptest_config(cases(4_000))]
    #[test]
    fn mutated_models_never_panic(seed in any::<usize>(), edits in prop::collection::vec(edit(), 1..6)) {
        let seeds = seeds();
        let text = &seeds[seed % seeds.len()];
        run_everything(&apply(text, &edits));
    }
}

#[test]
fn absurd_nesting_is_an_error_not_a_crash() {
    let deep = format!(
        "model m {{ reg {}x{}; }}",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let checked = hfc::check("deep.hfm", &deep, &mut NoFiles);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.code() == "hfc::syntax::too_complex")
    );
    let long = format!("model m {{ reg {}x; }}", "-".repeat(100_000));
    let checked = hfc::check("long.hfm", &long, &mut NoFiles);
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.code() == "hfc::syntax::too_complex")
    );
}
