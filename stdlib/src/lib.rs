//! `hfc-stdlib`: the standard library of `.hfm` models and norms, compiled into the binary.
//!
//! Models import these files as `import "std/<name>";` (and they import each other by bare
//! name). Every file here is checked by the test suite: it must check clean, and its
//! `hfc explain` output is snapshot-tested.

#![deny(missing_docs)]

macro_rules! files {
    ($($name:literal),* $(,)?) => {
        /// Every standard-library file: its name (without the `std/` prefix) and its text.
        pub static FILES: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../hfm/", $name)))),*
        ];
    };
}

files![
    "norms.hfm",
    "lowrank.hfm",
    "nmf.hfm",
    "sparse_dictionary.hfm",
    "robust_pca.hfm",
    "completion.hfm",
    "cp_tensor.hfm",
    "relu_network.hfm",
    "tv_factorization.hfm",
    "adaptive_dropout.hfm",
];

/// The text of the standard-library file `name` (e.g. `"norms.hfm"`).
pub fn file(name: &str) -> Option<&'static str> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_file_in_the_folder_is_listed() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/hfm");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .expect("stdlib/hfm exists")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".hfm"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = super::FILES.iter().map(|(n, _)| n.to_string()).collect();
        listed.sort();
        assert_eq!(on_disk, listed);
    }
}
