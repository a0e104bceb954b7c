//! Real-size checkpoints without real-size disks: 8B- and 405B-shaped BF16 folders whose
//! shards are sparse files (a header, then `set_len`; no weight byte is written). Opening
//! them must read no weights, and admission must decide from the shapes alone: an 8B kept
//! 16-bit fits a 24 GB machine, a 405B is refused at once with both numbers. Nothing here
//! ever loads the weights of these folders.

mod common;

use std::fs;

use common::sparse::{LLAMA3_8B, LLAMA31_405B, write_sparse_llama};
use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::Session;
use llm_anatomy::engine::memory::{self, gb};

/// A field of /proc/self/<file> ("rchar" of io, "VmRSS" of status) as a number; None
/// off Linux. VmRSS is in kB, rchar in bytes: callers compare like with like.
fn proc_number(file: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/self/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A temporary folder to write a 405B into, where the machine's available memory is known;
/// elsewhere nothing would refuse it, and the test is skipped rather than loading 810 GB.
fn folder_for_405b() -> Option<tempfile::TempDir> {
    if memory::available_memory().is_none() {
        println!("skipped: no MemAvailable on this platform, so nothing would refuse the 405B");
        return None;
    }
    Some(tempfile::tempdir().unwrap())
}

#[test]
fn an_8b_kept_16_bit_fits_24_gb_and_not_9_8_gb() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("llama-3-8b-shaped");
    write_sparse_llama(&folder, &LLAMA3_8B);
    let model = ModelFolder::open(&folder).unwrap();
    let cfg = model.config.as_ref().unwrap();
    let params = model.checkpoint.total_params();
    assert_eq!(params, 8_030_261_248, "Llama-3-8B's parameter count");

    let fits = memory::admission(cfg, &model.checkpoint, Some(24_000_000_000)).expect("an 8B in BF16 fits in 24 GB");
    assert_eq!(fits.weights, 2 * params, "BF16 stays 16-bit: two bytes per parameter, no f32 copy");
    assert_eq!(fits.context, 4096);
    // 32 layers × 8 KV heads × 128 × 4,096 positions × (k, v) × 4 bytes.
    assert_eq!(fits.kv_cache, 1 << 30);
    println!("8B estimate: {} (weights {}, KV {})", gb(fits.total()), gb(fits.weights), gb(fits.kv_cache));

    let refusal = memory::admission(cfg, &model.checkpoint, Some(9_800_000_000)).unwrap_err();
    let sentence = refusal.to_string();
    let want = format!("needs {}, 9.8 GB available: this model can be inspected but not run here", gb(fits.total()));
    assert!(sentence.starts_with(&want), "{sentence}");
    assert_eq!(memory::admission(cfg, &model.checkpoint, None), Ok(fits), "no figure for the machine: no refusal");
}

#[test]
fn opening_real_size_folders_reads_no_weights_and_a_405b_is_refused_at_once() {
    let Some(dir) = folder_for_405b() else { return };
    let small = dir.path().join("llama-3-8b-shaped");
    let huge = dir.path().join("llama-3.1-405b-shaped");
    write_sparse_llama(&small, &LLAMA3_8B);
    write_sparse_llama(&huge, &LLAMA31_405B);

    let (rss0, read0) = (proc_number("status", "VmRSS:"), proc_number("io", "rchar:"));
    let t = std::time::Instant::now();
    let eight = ModelFolder::open(&small).unwrap();
    let four05 = ModelFolder::open(&huge).unwrap();
    assert!(four05.checkpoint.total_bytes() > 800_000_000_000);
    let refused = Session::load(&four05).err().expect("a 405B cannot run on a test machine");
    let elapsed = t.elapsed();
    let (rss1, read1) = (proc_number("status", "VmRSS:"), proc_number("io", "rchar:"));

    let want = "GB available: this model can be inspected but not run here";
    assert!(refused.contains("needs 8") && refused.contains(want), "{refused}");
    assert!(elapsed.as_secs_f64() < 5.0, "refused after {elapsed:?}: it must not start reading");
    if let (Some(a), Some(b)) = (rss0, rss1) {
        assert!(b.saturating_sub(a) < 100_000, "RSS grew by {} kB opening 16 GB + 810 GB folders", b - a);
    }
    if let (Some(a), Some(b)) = (read0, read1) {
        // The headers and configs only (the 405B's headers are ~100 kB each).
        assert!(b - a < 20_000_000, "read {} bytes opening the folders", b - a);
    }
    drop(eight);
}

#[test]
fn the_cli_refuses_a_405b_and_exits_non_zero() {
    let Some(dir) = folder_for_405b() else { return };
    let huge = dir.path().join("llama-3.1-405b-shaped");
    write_sparse_llama(&huge, &LLAMA31_405B);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["probs", huge.to_str().unwrap(), "--prompt", "1, 2, 3, 4,"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("can be inspected but not run here"), "{stderr}");
}
