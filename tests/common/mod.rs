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
