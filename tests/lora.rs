//! LoRA adapters against PEFT: the wrapped tree, ΔW norms and singular values, and the
//! next-token distribution with the adapter on (unmerged, equal to merge_and_unload).

mod common;

use std::process::Command;
use std::sync::Arc;

use common::{close, fixture, reference};
use llm_anatomy::arch::{ModelFolder, ROOT, peft};
use llm_anatomy::engine::Session;
use llm_anatomy::lora::LoraAdapter;
use llm_anatomy::sampling::{self, SamplingParams};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
}

#[test]
fn peft_tree_text_and_trainable_count() {
    let base = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let adapter = LoraAdapter::open(&fixture("tiny-llama-lora"), &base, None).unwrap();
    let r = reference("tiny-llama-lora");
    assert_eq!(peft::wrap(&base.tree, &adapter).repr(ROOT), r["repr_peft_v4"].as_str().unwrap());
    assert_eq!(adapter.trainable_params(), r["lora_param_count"].as_u64().unwrap());
    assert_eq!(adapter.scaling, r["scaling"].as_f64().unwrap());
    assert_eq!(
        peft::trainable_line(&adapter, base.tree.unique_param_count(ROOT)),
        "trainable params: 3,584 || all params: 208,704 || trainable%: 1.7173"
    );
    let out = bin()
        .args([
            "tree",
            fixture("tiny-llama").to_str().unwrap(),
            "--adapter",
            fixture("tiny-llama-lora").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), format!("{}\n", r["repr_peft_v4"].as_str().unwrap()));
}

fn check_modules(json: &serde_json::Value, modules: &[serde_json::Value], rank: usize) {
    assert_eq!(json["modules"].as_array().unwrap().len(), modules.len());
    for want in modules {
        let name = want["module"].as_str().unwrap();
        let got = json["modules"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing"));
        for (g, w) in [("w_norm", "fro_W"), ("delta_norm", "fro_delta"), ("ratio", "ratio_delta_over_W")] {
            assert!(
                close(got[g].as_f64().unwrap(), want[w].as_f64().unwrap(), 1e-4, 0.0),
                "{name} {g}: {} vs {}",
                got[g],
                want[w]
            );
        }
        let sv: Vec<f64> = serde_json::from_value(got["singular_values"].clone()).unwrap();
        let want_sv: Vec<f64> = serde_json::from_value(want["top8_singular_values_delta"].clone()).unwrap();
        assert_eq!(sv.len(), 8);
        for i in 0..rank.min(8) {
            assert!(close(sv[i], want_sv[i], 1e-3, 0.0), "{name} singular value {i}: {} vs {}", sv[i], want_sv[i]);
        }
    }
}

#[test]
fn lora_cli_norms_ratios_and_singular_values() {
    let r = reference("tiny-llama-lora");
    let v = common::cli_json(&[
        "lora",
        fixture("tiny-llama").to_str().unwrap(),
        fixture("tiny-llama-lora").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["rank"], 8);
    assert_eq!(v["alpha"], 16.0);
    assert_eq!(v["scaling"], 2.0);
    check_modules(&v, r["modules"].as_array().unwrap(), 8);
}

#[test]
fn minimind_pth_loads_with_its_reference_norms() {
    let r = reference("tiny-llama-minimind-lora");
    let v = common::cli_json(&[
        "lora",
        fixture("tiny-llama").to_str().unwrap(),
        fixture("tiny-llama-minimind-lora.pth").to_str().unwrap(),
        "--json",
    ]);
    assert_eq!(v["rank"], 16);
    assert_eq!(v["scaling"], 1.0);
    check_modules(&v, r["modules"].as_array().unwrap(), 16);
    // The MiniMind convention in the tree: a LoRA module under each patched Linear.
    let out = bin()
        .args([
            "tree",
            fixture("tiny-llama").to_str().unwrap(),
            "--adapter",
            fixture("tiny-llama-minimind-lora.pth").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("(lora): LoRA(\n"), "{text}");
    assert!(text.contains("(A): Linear(in_features=64, out_features=16, bias=False)"), "{text}");
}

#[test]
fn adapted_distributions_match_peft_and_merged_equals_unmerged() {
    let base = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let adapter = Arc::new(LoraAdapter::open(&fixture("tiny-llama-lora"), &base, None).unwrap());
    let mut s = Session::load(&base).unwrap();
    s.set_adapter(Some((adapter, 1.0))).unwrap();
    let r = reference("tiny-llama-lora");
    for key in ["prompts", "prompts_merged"] {
        for prompt in r[key].as_array().unwrap() {
            let ids: Vec<u32> = serde_json::from_value(prompt["input_ids"].clone()).unwrap();
            s.set_prompt_ids(ids).unwrap();
            let logits = s.current_logits().unwrap();
            for (setting, sp) in prompt["samplers"].as_object().unwrap() {
                let t = sp["settings"].get("temperature").and_then(|v| v.as_f64()).unwrap_or(1.0) as f32;
                let params = SamplingParams {
                    temperature: t,
                    top_k: sp["settings"].get("top_k").and_then(|v| v.as_u64()).unwrap_or(0) as usize,
                    top_p: sp["settings"].get("top_p").and_then(|v| v.as_f64()).unwrap_or(1.0) as f32,
                    min_p: sp["settings"].get("min_p").and_then(|v| v.as_f64()).unwrap_or(0.0) as f32,
                    ..Default::default()
                };
                let d = sampling::distribution(&logits, &s.tokens, &params);
                for e in sp["top20"].as_array().unwrap() {
                    let id = e["id"].as_u64().unwrap() as usize;
                    assert!((d.probs[id] - e["prob"].as_f64().unwrap() as f32).abs() < 1e-4, "{key} {setting} p({id})");
                }
            }
            let greedy: Vec<u32> = serde_json::from_value(prompt["greedy_ids"].clone()).unwrap();
            assert_eq!(
                s.generate(greedy.len(), &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap(),
                greedy,
                "{key}"
            );
        }
    }
    // Strength 0 is the base model.
    let base_ref = reference("tiny-llama");
    let adapter = s.adapter.clone().unwrap().0;
    s.set_adapter(Some((adapter, 0.0))).unwrap();
    s.set_prompt("The model has weights", false).unwrap();
    let greedy: Vec<u32> = serde_json::from_value(base_ref["prompts"][0]["greedy_ids"].clone()).unwrap();
    assert_eq!(s.generate(12, &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap(), greedy);
}

#[test]
fn base_logits_beside_the_adapter_follow_every_step_and_step_back() {
    let base = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let adapter = Arc::new(LoraAdapter::open(&fixture("tiny-llama-lora"), &base, None).unwrap());
    let mut with = Session::load(&base).unwrap();
    with.set_adapter(Some((adapter, 1.0))).unwrap();
    let mut plain = Session::load(&base).unwrap();
    assert!(plain.base_logits().is_none(), "no adapter, no comparison");
    for s in [&mut with, &mut plain] {
        s.set_prompt("The model has weights", false).unwrap();
        s.generate(3, &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
        s.step_back().unwrap();
    }
    // Same tokens in both (forced), so the base column must be the plain model's logits.
    let tokens = with.tokens.clone();
    plain.set_prompt_ids(tokens[..with.prompt_len].to_vec()).unwrap();
    for &t in &tokens[with.prompt_len..] {
        plain.append(t).unwrap();
    }
    let (base_side, reference) = (with.base_logits().unwrap(), plain.current_logits().unwrap());
    let worst = base_side.iter().zip(reference.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "base logits beside the adapter differ from the plain model by {worst}");
    assert_ne!(with.current_logits().unwrap(), reference, "the adapter changes the logits");
}

#[test]
fn probs_cli_with_adapter_and_scale() {
    let r = reference("tiny-llama-lora");
    let v = common::cli_json(&[
        "probs",
        fixture("tiny-llama").to_str().unwrap(),
        "--prompt",
        "The model has weights",
        "--adapter",
        fixture("tiny-llama-lora").to_str().unwrap(),
        "--top",
        "3",
        "--json",
    ]);
    assert_eq!(v["candidates"][0]["id"], r["prompts"][0]["samplers"]["t1.0"]["top20"][0]["id"]);
}

fn bad_adapter(edit: impl Fn(&std::path::Path)) -> String {
    let (_dir, a) = common::copy_fixture("tiny-llama-lora");
    edit(&a);
    let base = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    LoraAdapter::open(&a, &base, None).expect_err("should be refused")
}

#[test]
fn bad_adapters_are_refused_with_a_reason() {
    let rank = bad_adapter(|a| {
        let p = a.join("adapter_config.json");
        std::fs::write(&p, std::fs::read_to_string(&p).unwrap().replace("\"r\": 8", "\"r\": 4")).unwrap();
    });
    assert!(rank.contains("rank 8") && rank.contains("r = 4"), "{rank}");
    let dora = bad_adapter(|a| {
        let p = a.join("adapter_config.json");
        std::fs::write(&p, std::fs::read_to_string(&p).unwrap().replace("\"use_dora\": false", "\"use_dora\": true"))
            .unwrap();
    });
    assert!(dora.contains("DoRA"), "{dora}");
    let missing = bad_adapter(|a| std::fs::remove_file(a.join("adapter_model.safetensors")).unwrap());
    assert!(missing.contains("adapter_model.safetensors"), "{missing}");
    let garbage = bad_adapter(|a| std::fs::write(a.join("adapter_config.json"), "{").unwrap());
    // Same-length renames inside the safetensors header keep the file valid.
    let rename = |from: &'static str, to: &'static str| {
        move |a: &std::path::Path| {
            let p = a.join("adapter_model.safetensors");
            let mut bytes = std::fs::read(&p).unwrap();
            let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
            let header = String::from_utf8(bytes[8..8 + n].to_vec()).unwrap().replacen(from, to, 2);
            bytes[8..8 + n].copy_from_slice(header.as_bytes());
            std::fs::write(&p, bytes).unwrap();
        }
    };
    let absent = bad_adapter(rename("layers.1.self_attn.q_proj", "layers.7.self_attn.q_proj"));
    assert!(absent.contains("model.layers.7.self_attn.q_proj") && absent.contains("does not have"), "{absent}");
    let shape = bad_adapter(rename("layers.0.self_attn.q_proj", "layers.0.self_attn.k_proj"));
    assert!(shape.contains("k_proj") && shape.contains("[32, 64]"), "{shape}");
    assert!(garbage.contains("adapter_config.json") && garbage.contains("JSON"), "{garbage}");
    // Base model without the targeted module / with another shape.
    let base = ModelFolder::open(&fixture("tiny-qwen2moe")).unwrap();
    let mixtral = ModelFolder::open(&fixture("tiny-mixtral")).unwrap();
    let ok_shapes = LoraAdapter::open(&fixture("tiny-llama-lora"), &mixtral, None);
    assert!(ok_shapes.is_ok(), "same shapes: {:?}", ok_shapes.err());
    let qwen = LoraAdapter::open(&fixture("tiny-llama-lora"), &base, None);
    assert!(qwen.is_ok(), "qwen2-moe has the same q/v shapes too");
    let (dir, small) = common::copy_fixture("tiny-llama");
    let cfg = small.join("config.json");
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap().replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1"),
    )
    .unwrap();
    // A 1-layer config over 2-layer weights opens (the extra tensors are reported, like
    // transformers' "unexpected keys"), and an adapter for layer 1 is then refused.
    let one_layer = ModelFolder::open(&small).unwrap();
    assert!(one_layer.notices[0].contains("model.layers.1."), "{:?}", one_layer.notices);
    let e = LoraAdapter::open(&fixture("tiny-llama-lora"), &one_layer, None).err().unwrap();
    assert!(e.contains("model.layers.1.self_attn") && e.contains("does not have"), "{e}");
    let bad_pth = dir.path().join("x.pth");
    std::fs::write(&bad_pth, b"not a zip").unwrap();
    let base = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let e = LoraAdapter::open(&bad_pth, &base, None).err().unwrap();
    assert!(e.contains("x.pth"), "{e}");
    let out =
        bin().args(["lora", fixture("tiny-llama").to_str().unwrap(), bad_pth.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
}
