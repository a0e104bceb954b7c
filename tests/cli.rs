//! The headless subcommands: their text and JSON are a contract scripts rely on.

mod common;

use std::process::Command;

use common::{close, fixture, reference};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
}

fn run_ok(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn tree_prints_exactly_print_model() {
    let path = fixture("tiny-mixtral");
    let out = run_ok(&["tree", path.to_str().unwrap()]);
    assert_eq!(out, format!("{}\n", reference("tiny-mixtral")["repr_v4"].as_str().unwrap()));
}

#[test]
fn tensors_json_lists_every_tensor_with_its_file() {
    let path = fixture("tiny-llama-sharded");
    let out = run_ok(&["tensors", path.to_str().unwrap(), "--json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(rows.len(), 21);
    let lm = rows.iter().find(|r| r["name"] == "lm_head.weight").unwrap();
    assert_eq!(lm["dtype"], "F32");
    assert_eq!(lm["shape"], serde_json::json!([1024, 64]));
    assert_eq!(lm["bytes"], 1024 * 64 * 4);
    assert_eq!(lm["file"], "model-00003-of-00003.safetensors");
    for key in ["name", "dtype", "shape", "bytes", "file"] {
        assert!(rows.iter().all(|r| r.get(key).is_some()), "missing {key}");
    }
}

#[test]
fn tensors_text_has_a_summary_line() {
    let path = fixture("tiny-llama");
    let out = run_ok(&["tensors", path.to_str().unwrap()]);
    assert!(out.contains("21 tensors, 205120 parameters"), "{out}");
}

#[test]
fn stats_json_has_the_contract_keys_and_numpy_numbers() {
    let path = fixture("tiny-llama-bf16");
    let name = "model.layers.0.self_attn.q_proj.weight";
    let out = run_ok(&["stats", path.to_str().unwrap(), name, "--bins", "32", "--json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    for key in ["name", "dtype", "shape", "count", "mean", "std", "min", "max", "zeros", "nan", "inf", "histogram"] {
        assert!(v.get(key).is_some(), "missing key {key}");
    }
    let r = &reference("tiny-llama-bf16")["tensors"][name];
    assert_eq!(v["name"], name);
    assert_eq!(v["dtype"], "BF16");
    assert_eq!(v["count"], 64 * 64);
    assert!(close(v["std"].as_f64().unwrap(), r["std"].as_f64().unwrap(), 1e-5, 0.0));
    assert_eq!(v["histogram"]["counts"], r["hist32"]);
    assert_eq!(v["histogram"]["edges"].as_array().unwrap().len(), 33);
    assert_eq!(v["histogram"]["edges"][0].as_f64(), r["min"].as_f64());
    assert_eq!(v["histogram"]["edges"][32].as_f64(), r["max"].as_f64());
}

#[test]
fn stats_text_and_default_bins() {
    let path = fixture("tiny-qwen2");
    let out = run_ok(&["stats", path.to_str().unwrap(), "model.norm.weight"]);
    assert!(out.contains("count   64"), "{out}");
    assert_eq!(out.lines().filter(|l| l.starts_with('[')).count(), 32);
}

#[test]
fn errors_go_to_stderr_with_a_nonzero_exit() {
    let path = fixture("tiny-llama");
    let out = bin().args(["stats", path.to_str().unwrap(), "no.such.tensor"]).output().unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no.such.tensor"), "{err}");

    let out = bin().args(["tree", "/definitely/not/here"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here"));
}

/// Out-of-range sampler settings are refused with the allowed range, not run as something else.
#[test]
fn sampler_settings_out_of_range_are_refused() {
    let path = common::fixture("tiny-llama");
    let path = path.to_str().unwrap();
    for (flag, value) in [
        ("--temperature", "-1"),
        ("--temperature", "NaN"),
        ("--top-p", "2"),
        ("--top-p", "-0.5"),
        ("--top-p", "NaN"),
        ("--min-p", "2"),
        ("--min-p", "-1"),
        ("--repetition-penalty", "0"),
        ("--repetition-penalty", "-2"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
            .args(["probs", path, "--prompt", "The model", flag, value])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag} {value} was accepted");
        assert!(err.contains(flag) && err.contains("expected"), "{flag} {value}: {err}");
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["stats", path, "model.norm.weight", "--bins", "1000000000"])
        .output()
        .unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("expected 1 to 4096"));
}

#[test]
fn bits_takes_negative_infinity_and_tiny_negatives() {
    for v in ["-inf", "-5.9e-39"] {
        let j = common::cli_json(&["bits", v, "--json"]);
        assert!(j.get("f32").is_some() || j.as_object().is_some_and(|o| o.len() > 2), "{v}: {j}");
    }
}

/// A tensor named with terminal escape bytes is printed with visible escapes, not raw.
#[test]
fn names_with_control_characters_do_not_reach_the_terminal_raw() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), r#"{"model_type": "mystery"}"#).unwrap();
    common::write_f32_safetensors(
        &dir.path().join("model.safetensors"),
        &[("evil\u{1b}[2J.weight", vec![2])],
        |_, _| 1.0,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["tensors", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!out.stdout.contains(&0x1b));
    assert!(String::from_utf8_lossy(&out.stdout).contains("evil\\u{1b}[2J.weight"));
}

/// Runs the CLI expecting a refusal; returns stderr.
fn run_err(args: &[&str]) -> String {
    let out = bin().args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout when refused");
    String::from_utf8(out.stderr).unwrap()
}

/// A folder without tokenizer.json still opens for inspection (tree), but inference says why it cannot run;
/// an empty prompt is refused rather than run on zero tokens.
#[test]
fn missing_tokenizer_and_empty_prompt_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("tiny-llama").join(f), dir.path().join(f)).unwrap();
    }
    let p = dir.path().to_str().unwrap();
    // Reference for the tree: transformers' print(model), which needs no tokenizer either.
    assert_eq!(run_ok(&["tree", p]), format!("{}\n", reference("tiny-llama")["repr_v4"].as_str().unwrap()));
    for cmd in ["probs", "generate"] {
        let err = run_err(&[cmd, p, "--prompt", "The model has weights"]);
        assert!(err.contains("tokenizer.json"), "{cmd}: {err}");
    }
    let tiny = fixture("tiny-llama");
    let err = run_err(&["probs", tiny.to_str().unwrap(), "--prompt", ""]);
    assert!(err.contains("no tokens"), "{err}");
}

/// Seeded sampling replays: the same seed gives the same tokens run after run, another seed other tokens, and
/// the CLI's tokens are the ones an in-process replay draws from the same distributions with
/// `uniform(seed, step)` (step = tokens generated so far), the generator the Token panel shows.
#[test]
fn seeded_cli_sampling_replays() {
    use llm_anatomy::sampling::{SamplingParams, distribution, draw, uniform};
    let path = fixture("tiny-llama");
    let p = path.to_str().unwrap();
    let run = |seed: &str| -> Vec<u32> {
        let args = ["generate", p, "--prompt", "The model has weights", "--max-new", "8", "--temperature", "1.2"];
        let v = common::cli_json(&[&args[..], &["--top-k", "50", "--seed", seed, "--json"]].concat());
        serde_json::from_value(v["new_ids"].clone()).unwrap()
    };
    let a = run("7");
    assert_eq!(a.len(), 8);
    assert_eq!(run("7"), a, "same seed, same tokens");
    assert_ne!(run("8"), a, "another seed, other tokens");

    let folder = llm_anatomy::arch::ModelFolder::open(&path).unwrap();
    let mut s = llm_anatomy::engine::Session::load(&folder).unwrap();
    s.set_prompt("The model has weights", false).unwrap();
    // The prompt's ids are transformers' (reference), so the replay starts where the reference does.
    let want_ids: Vec<u32> =
        serde_json::from_value(reference("tiny-llama")["prompts"][0]["input_ids"].clone()).unwrap();
    assert_eq!(s.tokens, want_ids);
    let params = SamplingParams { temperature: 1.2, top_k: 50, seed: 7, ..Default::default() };
    for (step, &id) in a.iter().enumerate() {
        let d = distribution(&s.current_logits().unwrap(), &s.tokens, &params);
        assert_eq!(draw(&d, uniform(7, step as u64)), id, "step {step}");
        s.append(id).unwrap();
    }
}
