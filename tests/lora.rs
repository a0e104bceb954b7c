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
    // PEFT's print_trainable_parameters(): f"trainable params: {t:,d} || all params: {all:,d} || trainable%:
    // {100 * t / all:.4f}", where all = the base's num_parameters() + the LoRA parameters (both in the references).
    let trainable = r["lora_param_count"].as_u64().unwrap();
    let all = reference("tiny-llama")["param_count"]["total"].as_u64().unwrap() + trainable;
    let thousands = |n: u64| {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    let want = format!(
        "trainable params: {} || all params: {} || trainable%: {:.4}",
        thousands(trainable),
        thousands(all),
        100.0 * trainable as f64 / all as f64
    );
    assert_eq!(want, "trainable params: 3,584 || all params: 208,704 || trainable%: 1.7173", "the formula itself");
    assert_eq!(peft::trainable_line(&adapter, base.tree.unique_param_count(ROOT)), want);
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
        assert!(!r[key].as_array().unwrap().is_empty(), "{key}");
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
    assert_eq!(base_side.len(), reference.len());
    let worst = base_side.iter().zip(reference.iter()).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-4, "base logits beside the adapter differ from the plain model by {worst}");
    assert_ne!(with.current_logits().unwrap(), reference, "the adapter changes the logits");
}

/// Every token's probability from `probs --json --top 1024` (the whole vocabulary), by id. The vocabulary has
/// DEL (id 127's text): this also checks the JSON stays parseable (it was written as `\u{7f}` once).
fn all_probs(model: &std::path::Path, extra: &[&str]) -> Vec<f64> {
    let mut args =
        vec!["probs", model.to_str().unwrap(), "--prompt", "The model has weights", "--top", "1024", "--json"];
    args.extend_from_slice(extra);
    let v = common::cli_json(&args);
    let candidates = v["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 1024, "the whole vocabulary");
    let mut probs = vec![f64::NAN; 1024];
    for c in candidates {
        probs[c["id"].as_u64().unwrap() as usize] = c["prob"].as_f64().unwrap();
    }
    assert!(probs.iter().all(|p| p.is_finite()), "every id once");
    probs
}

fn max_diff(a: &[f64], b: &[f64]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f64::max)
}

/// A copy of tiny-llama whose adapted weights are merged by hand: W + s · scaling · B·A for every module of
/// the adapter (A, B as read by the crate's `LoraAdapter`; the arithmetic here is independent of the engine).
fn merged_copy(scale: f64) -> (tempfile::TempDir, std::path::PathBuf) {
    let (dir, folder) = common::copy_fixture("tiny-llama");
    let base = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let adapter = LoraAdapter::open(&fixture("tiny-llama-lora"), &base, None).unwrap();
    let path = folder.join("model.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    assert!(!adapter.modules.is_empty());
    for m in &adapter.modules {
        let t = &header[format!("{}.weight", m.module)];
        assert_eq!(t["dtype"], "F32");
        assert_eq!(t["shape"], serde_json::json!([m.out_features, m.in_features]));
        let start = 8 + n + t["data_offsets"][0].as_u64().unwrap() as usize;
        for o in 0..m.out_features {
            for i in 0..m.in_features {
                let delta: f64 =
                    (0..m.rank).map(|r| m.b[o * m.rank + r] as f64 * m.a[r * m.in_features + i] as f64).sum();
                let at = start + 4 * (o * m.in_features + i);
                let w = f32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as f64;
                let merged = (w + scale * adapter.scaling * delta) as f32;
                bytes[at..at + 4].copy_from_slice(&merged.to_le_bytes());
            }
        }
    }
    std::fs::write(&path, bytes).unwrap();
    (dir, folder)
}

/// `--adapter-scale S` multiplies ΔW by S. References: at 0, the base model's own `probs` (to 1e-6); at 1, PEFT's
/// top-1 from the reference; at 0.5, a forward pass of weights merged by hand at W + 0.5·scaling·B·A (to 1e-5),
/// which must differ from both ends, so a scale that is ignored or applied twice fails.
#[test]
fn probs_cli_with_adapter_and_scale() {
    let r = reference("tiny-llama-lora");
    let base = fixture("tiny-llama");
    let lora = fixture("tiny-llama-lora");
    let lora = lora.to_str().unwrap();
    let full = all_probs(&base, &["--adapter", lora]);
    let top = full.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
    assert_eq!(top as u64, r["prompts"][0]["samplers"]["t1.0"]["top20"][0]["id"].as_u64().unwrap());
    for e in r["prompts"][0]["samplers"]["t1.0"]["top20"].as_array().unwrap() {
        let id = e["id"].as_u64().unwrap() as usize;
        assert!((full[id] - e["prob"].as_f64().unwrap()).abs() < 1e-4, "scale 1 vs PEFT p({id})");
    }

    let plain = all_probs(&base, &[]);
    let off = all_probs(&base, &["--adapter", lora, "--adapter-scale", "0"]);
    assert!(max_diff(&off, &plain) < 1e-6, "scale 0 is the base model: {}", max_diff(&off, &plain));

    let half = all_probs(&base, &["--adapter", lora, "--adapter-scale", "0.5"]);
    let (_dir, merged) = merged_copy(0.5);
    let want = all_probs(&merged, &[]);
    assert!(max_diff(&half, &want) < 1e-5, "scale 0.5 vs merged W + ΔW/2: {}", max_diff(&half, &want));
    assert!(max_diff(&half, &plain) > 1e-3 && max_diff(&half, &full) > 1e-3, "0.5 lies between, at neither end");
}

/// `--alpha` sets α for an adapter that does not store it (MiniMind's .pth, scaling α / r with r = 16).
/// Reference: the .pth's ΔW norms at scaling 1, which scale linearly with α: α = 8 halves ‖ΔW‖ and the ratio.
#[test]
fn alpha_rescales_a_pth_adapter() {
    let r = reference("tiny-llama-minimind-lora");
    let v = common::cli_json(&[
        "lora",
        fixture("tiny-llama").to_str().unwrap(),
        fixture("tiny-llama-minimind-lora.pth").to_str().unwrap(),
        "--alpha",
        "8",
        "--json",
    ]);
    assert_eq!(v["scaling"], 0.5);
    let modules = r["modules"].as_array().unwrap();
    assert_eq!(v["modules"].as_array().unwrap().len(), modules.len());
    for want in modules {
        let name = want["module"].as_str().unwrap();
        let got = v["modules"].as_array().unwrap().iter().find(|m| m["name"] == name).unwrap();
        assert!(close(got["w_norm"].as_f64().unwrap(), want["fro_W"].as_f64().unwrap(), 1e-4, 0.0));
        for (g, w) in [("delta_norm", "fro_delta"), ("ratio", "ratio_delta_over_W")] {
            let (got, want) = (got[g].as_f64().unwrap(), want[w].as_f64().unwrap() / 2.0);
            assert!(close(got, want, 1e-4, 0.0), "{name} {g} at α = 8: {got} vs {want}");
        }
    }
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
    // A 1-layer config over 2-layer weights opens, as transformers loads it (the extra tensors are
    // reported like its "unexpected keys"), and an adapter for layer 1 is then refused.
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
