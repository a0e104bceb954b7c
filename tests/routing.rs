//! MoE routing against transformers' router outputs, through the `routing` subcommand.

mod common;

use std::process::Command;

use common::{fixture, reference};

fn routing_json(name: &str, prompt: &str, chat: bool) -> serde_json::Value {
    let path = fixture(name);
    let mut args = vec!["routing", path.to_str().unwrap(), "--prompt", prompt, "--json"];
    if chat {
        args.push("--chat");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_llm-anatomy")).args(&args).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn router_probabilities_choices_and_load_match_transformers() {
    for name in ["tiny-mixtral", "tiny-qwen2moe"] {
        let r = reference(name);
        let prompts = r["prompts"].as_array().unwrap();
        for (i, rp) in r["router"]["prompts"].as_array().unwrap().iter().enumerate() {
            let text = prompts[i]["text"].as_str().unwrap();
            let chat = prompts[i]["name"] == "chat";
            let input = if chat {
                text.trim_start_matches("<|im_start|>user\n").split("<|im_end|>").next().unwrap()
            } else {
                text
            };
            let v = routing_json(name, input, chat);
            let ids: Vec<u64> = v["tokens"].as_array().unwrap().iter().map(|t| t["id"].as_u64().unwrap()).collect();
            let want_ids: Vec<u64> = serde_json::from_value(rp["input_ids"].clone()).unwrap();
            assert_eq!(ids, want_ids, "{name} prompt {i}");
            assert_eq!(
                v["layers"].as_array().unwrap().len(),
                rp["layers"].as_array().unwrap().len(),
                "{name} prompt {i}: MoE layers"
            );
            for (layer, want) in v["layers"].as_array().unwrap().iter().zip(rp["layers"].as_array().unwrap()) {
                assert_eq!(layer["layer"], want["layer"]);
                assert_eq!(
                    layer["probs"].as_array().unwrap().len(),
                    want["tokens"].as_array().unwrap().len(),
                    "{name} prompt {i}: one row per token"
                );
                let mut load = vec![0u64; r["router"]["num_experts"].as_u64().unwrap() as usize];
                for (t, tok) in want["tokens"].as_array().unwrap().iter().enumerate() {
                    let probs: Vec<f64> = serde_json::from_value(layer["probs"][t].clone()).unwrap();
                    let want_p: Vec<f64> = serde_json::from_value(tok["probs"].clone()).unwrap();
                    assert_eq!(probs.len(), want_p.len(), "{name} prompt {i} token {t}: experts");
                    for (a, b) in probs.iter().zip(&want_p) {
                        assert!(
                            (a - b).abs() < 1e-5,
                            "{name} prompt {i} layer {} token {t}: {a} vs {b}",
                            want["layer"]
                        );
                    }
                    assert_eq!(layer["topk"][t], tok["topk_ids"], "{name} prompt {i} token {t}");
                    let w: Vec<f64> = serde_json::from_value(layer["weights"][t].clone()).unwrap();
                    let want_w: Vec<f64> = serde_json::from_value(tok["topk_weights"].clone()).unwrap();
                    assert_eq!(w.len(), want_w.len(), "{name} prompt {i} token {t}: mixing weights");
                    for (a, b) in w.iter().zip(&want_w) {
                        assert!((a - b).abs() < 1e-5);
                    }
                    if let Some(g) = tok.get("shared_expert_gate_sigmoid") {
                        assert!((layer["shared_gate"][t].as_f64().unwrap() - g.as_f64().unwrap()).abs() < 1e-5);
                    }
                    for e in tok["topk_ids"].as_array().unwrap() {
                        load[e.as_u64().unwrap() as usize] += 1;
                    }
                }
                assert_eq!(layer["load"], serde_json::json!(load), "{name} prompt {i}: load = count of top-k choices");
            }
        }
    }
}

#[test]
fn dense_models_say_why_there_is_no_routing() {
    let path = fixture("tiny-llama");
    let out = Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["routing", path.to_str().unwrap(), "--prompt", "hi", "--json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dense model"));
}
