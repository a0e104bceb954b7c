//! Hostile inputs run in a child process under a 2 GB address-space limit (RLIMIT_AS via the
//! shell's `ulimit -v`): each must end with a clear error naming the file — exit code 1 —
//! never an abort, a crash or a run over the limit.

mod common;

use std::path::Path;
use std::process::Command;

use common::copy_fixture;

/// Runs the CLI with at most 2 GB of address space; returns (exit code, stderr).
fn run_limited(args: &[&str]) -> (Option<i32>, String) {
    let bin = env!("CARGO_BIN_EXE_llm-anatomy");
    let out =
        Command::new("sh").arg("-c").arg("ulimit -v 2097152; exec \"$0\" \"$@\"").arg(bin).args(args).output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn assert_clean_error(args: &[&str], names: &str) {
    let (code, err) = run_limited(args);
    assert_eq!(code, Some(1), "{args:?}: exit {code:?}, stderr {err}");
    assert!(err.contains(names), "{args:?}: the error does not name {names}: {err}");
}

fn set_key(folder: &Path, key: &str, value: serde_json::Value) {
    let path = folder.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    cfg[key] = value;
    std::fs::write(path, cfg.to_string()).unwrap();
}

#[test]
fn hostile_folders_end_in_clear_errors_within_two_gigabytes() {
    let (_a, layers) = copy_fixture("tiny-llama");
    set_key(&layers, "num_hidden_layers", serde_json::json!(1_000_000_000u64));
    assert_clean_error(&["tree", layers.to_str().unwrap()], "config.json");

    let (_b, experts) = copy_fixture("tiny-mixtral");
    set_key(&experts, "num_local_experts", serde_json::json!(1_000_000_000u64));
    assert_clean_error(&["tree", experts.to_str().unwrap()], "config.json");

    let (_c, zero) = copy_fixture("tiny-llama");
    std::fs::remove_file(zero.join("config.json")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", zero.join("config.json")).unwrap();
    assert_clean_error(&["tree", zero.to_str().unwrap()], "config.json");

    // A 90 MB header that is one JSON array.
    let (_d, array) = copy_fixture("tiny-llama");
    let header = format!("[{}]", vec!["0"; 45_000_000].join(","));
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    std::fs::write(array.join("model.safetensors"), bytes).unwrap();
    assert_clean_error(&["tensors", array.to_str().unwrap()], "model.safetensors");
}

#[test]
fn hostile_pickles_end_in_clear_errors_within_two_gigabytes() {
    let dir = tempfile::tempdir().unwrap();
    let deep = [vec![0x80, 2, b')'], vec![0x85; 500_000], vec![b'.']].concat();
    let bomb = {
        // An empty list, memoised, then fetched and appended to itself over and over.
        let mut p = vec![0x80, 2, b']', b'q', 0];
        for _ in 0..200_000 {
            p.extend([b'h', 0, b'a', b'q', 0]);
        }
        p.push(b'.');
        p
    };
    let base = common::fixture("tiny-llama");
    for (name, pickle) in [("deep.pth", deep), ("bomb.pth", bomb)] {
        let path = dir.path().join(name);
        std::fs::write(&path, llm_anatomy::fuzz::torch_zip(&pickle)).unwrap();
        assert_clean_error(&["tree", base.to_str().unwrap(), "--adapter", path.to_str().unwrap()], name);
    }
}
