//! A short smoke of the fuzzer on every parser (the long runs are `cargo run --release --bin
//! fuzz`), and every crash case it ever kept, replayed: each must now be a clean error.

use std::path::Path;

use llm_anatomy::fuzz::{self, Target};

#[test]
fn every_parser_survives_a_short_fuzz() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for target in Target::ALL {
        let seeds = fuzz::seeds(root, target);
        assert!(!seeds.is_empty(), "{}: no seeds", target.name());
        let execs = if matches!(target, Target::TorchZip) { 300 } else { 3000 };
        let report = fuzz::run(target, &seeds, execs, 7);
        assert!(
            report.crashes.is_empty(),
            "{}: {} crashes, first {:?}",
            target.name(),
            report.crashes.len(),
            &report.crashes[0][..report.crashes[0].len().min(200)]
        );
        assert_eq!(report.execs, execs);
    }
}

#[test]
fn kept_crash_cases_are_clean_errors_now() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fuzz-crashes");
    let Ok(entries) = std::fs::read_dir(&dir) else { return };
    for entry in entries {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let target = Target::ALL.into_iter().find(|t| name.starts_with(&format!("{}-", t.name()))).unwrap();
        let input = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| target.exec(&input));
        assert!(outcome.is_ok(), "{name} still panics");
    }
}
