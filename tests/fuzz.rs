//! The fuzz corpora replayed on stable: every committed input of every target in
//! fuzz/glue.rs (included here, as each fuzz target includes it), so a crash found once
//! stays found, and a check that the targets are registered everywhere.

#[allow(dead_code)]
#[path = "../fuzz/glue.rs"]
mod glue;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use glue::{Run, TARGETS};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    out.sort();
    out
}

/// Every committed input through its target, on stable, so a crash found once stays
/// found. `seeds/NAME/`: written by hand (valid values, edge cases, fixed crashes),
/// never minimised. `corpus/NAME/`: what the fuzzer grew, minimised. `crashes/NAME/`:
/// reproducers of crashes found and not fixed yet (the fuzzer does not load them, so
/// it keeps exploring); each must still panic, so the fix moves it into the seeds.
#[test]
fn corpora_replay() {
    let panics = |run: Run, path: &Path| {
        let data = std::fs::read(path).expect("corpus file");
        std::panic::catch_unwind(|| run(&data)).is_err()
    };
    let mut failed = Vec::new();
    for (name, run) in TARGETS {
        let seeds = files(&fuzz_dir().join("seeds").join(name));
        assert!(seeds.len() >= 5, "fuzz/seeds/{name} has too few seeds");
        let corpus = files(&fuzz_dir().join("corpus").join(name));
        for path in seeds.iter().chain(&corpus).filter(|p| panics(*run, p)) {
            failed.push(format!("panics: {}", path.display()));
        }
        let crashes = fuzz_dir().join("crashes").join(name);
        if crashes.is_dir() {
            for path in files(&crashes).iter().filter(|p| !panics(*run, p)) {
                failed.push(format!("fixed, move it to the seeds: {}", path.display()));
            }
        }
    }
    assert!(failed.is_empty(), "{failed:#?}");
}

/// The table here, the target files and fuzz/Cargo.toml name the same targets, so a
/// target cannot be fuzzed without being replayed, or the reverse.
#[test]
fn targets_are_registered_everywhere() {
    let table: BTreeSet<String> = TARGETS.iter().map(|(n, _)| n.to_string()).collect();
    let sources: BTreeSet<String> = files(&fuzz_dir().join("fuzz_targets"))
        .iter()
        .filter_map(|p| Some(p.file_stem()?.to_str()?.to_owned()))
        .collect();
    assert_eq!(table, sources, "TARGETS vs fuzz/fuzz_targets/*.rs");
    let manifest = std::fs::read_to_string(fuzz_dir().join("Cargo.toml")).unwrap();
    for name in &table {
        let bin = format!("name = \"{name}\"\npath = \"fuzz_targets/{name}.rs\"");
        assert!(
            manifest.contains(&bin),
            "fuzz/Cargo.toml lacks [[bin]] {name}"
        );
        let call = format!("glue::{name}(data)");
        let source = std::fs::read_to_string(fuzz_dir().join(format!("fuzz_targets/{name}.rs")));
        assert!(
            source.unwrap().contains(&call),
            "{name}.rs must call {call}"
        );
    }
}
