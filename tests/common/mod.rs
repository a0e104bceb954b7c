//! Shared helpers for the integration tests: fixture paths and reference files.
#![allow(dead_code)]

use std::path::PathBuf;

pub const MODEL_FIXTURES: [&str; 7] = [
    "tiny-llama",
    "tiny-llama-bf16",
    "tiny-llama-sharded",
    "tiny-llama-v4config",
    "tiny-qwen2",
    "tiny-mixtral",
    "tiny-qwen2moe",
];

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

pub fn reference(name: &str) -> serde_json::Value {
    let path = fixture(&format!("{name}.reference.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

/// |a - b| within `rel` of |b|, with an absolute floor for values near zero.
pub fn close(a: f64, b: f64, rel: f64, abs_floor: f64) -> bool {
    (a - b).abs() <= rel * b.abs() + abs_floor
}

/// A writable copy of a fixture folder, in a temporary directory kept alive by the guard.
pub fn copy_fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join(name);
    std::fs::create_dir(&dst).unwrap();
    for entry in std::fs::read_dir(fixture(name)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dst.join(entry.file_name())).unwrap();
    }
    (dir, dst)
}

/// Runs the CLI, requires success, and parses what it printed as JSON.
pub fn cli_json(args: &[&str]) -> serde_json::Value {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy")).args(args).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}
