//! `cargo run --release --bin fuzz [-- EXECS [TARGET]]`: mutation-fuzzes every parser a user's
//! file reaches (see `llm_anatomy::fuzz`) and prints executions, accepted inputs, crashes and
//! speed per target. Crashing inputs are written to `tests/fixtures/fuzz-crashes/`, where
//! `tests/fuzz.rs` replays them.

use std::path::Path;

use llm_anatomy::fuzz::{self, Target};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let execs: u64 = args.first().and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let only = args.get(1).cloned();
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crashes_dir = root.join("tests/fixtures/fuzz-crashes");
    let mut total_crashes = 0;
    for target in Target::ALL {
        if only.as_deref().is_some_and(|o| o != target.name()) {
            continue;
        }
        let seeds = fuzz::seeds(root, target);
        let report = fuzz::run(target, &seeds, execs, 0x5EED ^ target as u64);
        println!(
            "{:<20} {:>11} execs  {:>9} accepted  {:>3} crashes  corpus {:>5}  {:>8.0} execs/s",
            target.name(),
            report.execs,
            report.accepted,
            report.crashes.len(),
            report.corpus,
            report.execs as f64 / report.elapsed.as_secs_f64().max(1e-9)
        );
        for (i, input) in report.crashes.iter().take(20).enumerate() {
            let _ = std::fs::create_dir_all(&crashes_dir);
            let path = crashes_dir.join(format!("{}-{i}.bin", target.name()));
            let _ = std::fs::write(&path, input);
            println!("  crash kept: {}", path.display());
        }
        total_crashes += report.crashes.len();
    }
    if total_crashes > 0 {
        std::process::exit(1);
    }
}
