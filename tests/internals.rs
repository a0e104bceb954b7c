//! Inside the forward pass, against transformers 5.23 (float32, eager, `output_attentions`,
//! forward hooks on each decoder layer): `tests/fixtures/<model>.internals.reference.json`.
//! Attention within 1e-5, logit-lens top-5 ids equal and probabilities within 1e-4, residual
//! norms within 1e-4 relative — on every family the fixtures cover.

mod common;

use common::{cli_json, close, fixture};

const MODELS: [&str; 4] = ["tiny-llama", "tiny-qwen2", "tiny-mixtral", "tiny-qwen2moe"];

fn internals(model: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{model}.internals.reference.json"))).unwrap())
        .unwrap()
}

/// The prompt text of the model's main reference with these input ids.
fn prompt_text(model: &str, ids: &serde_json::Value) -> (String, bool) {
    let r = common::reference(model);
    let p = r["prompts"].as_array().unwrap().iter().find(|p| &p["input_ids"] == ids).expect("same prompt ids");
    (p["text"].as_str().unwrap().to_string(), p["chat"].as_bool().unwrap_or(false))
}

fn run(cmd: &str, model: &str, text: &str, chat: bool) -> serde_json::Value {
    let path = fixture(model);
    let mut args = vec![cmd, path.to_str().unwrap(), "--prompt", text, "--json"];
    if chat {
        args.push("--chat");
    }
    cli_json(&args)
}

#[test]
fn attention_weights_match_transformers() {
    for model in MODELS {
        let r = internals(model);
        for p in r["prompts"].as_array().unwrap() {
            let (text, chat) = prompt_text(model, &p["input_ids"]);
            let got = run("attention", model, &text, chat);
            assert_eq!(got["input_ids"], p["input_ids"], "{model}");
            let t = p["n_tokens"].as_u64().unwrap() as usize;
            let layers = got["layers"].as_array().unwrap();
            assert_eq!(layers.len(), r["num_layers"].as_u64().unwrap() as usize);
            for (l, layer) in layers.iter().enumerate() {
                let heads = layer["heads"].as_array().unwrap();
                // The last query row, for every prompt.
                let want_last = p["attentions_last_query"][l].as_array().unwrap();
                assert_eq!(heads.len(), want_last.len(), "{model} layer {l}: heads");
                for (h, head) in heads.iter().enumerate() {
                    let got_last = head[t - 1].as_array().unwrap();
                    let want = want_last[h].as_array().unwrap();
                    assert_eq!(got_last.len(), want.len());
                    for (g, w) in got_last.iter().zip(want) {
                        let (g, w) = (g.as_f64().unwrap(), w.as_f64().unwrap());
                        assert!((g - w).abs() < 1e-5, "{model} layer {l} head {h}: {g} vs {w}");
                    }
                    // Full matrices where the reference has them (prompts of ≤ 16 tokens).
                    if let Some(full) = p["attentions"].as_array() {
                        let want = full[l][h].as_array().unwrap();
                        for (i, row) in want.iter().enumerate() {
                            for (j, w) in row.as_array().unwrap().iter().enumerate() {
                                let g = head[i][j].as_f64().unwrap();
                                assert!((g - w.as_f64().unwrap()).abs() < 1e-5, "{model} l{l} h{h} [{i}][{j}]");
                            }
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn logit_lens_and_residual_norms_match_transformers() {
    for model in MODELS {
        let r = internals(model);
        for p in r["prompts"].as_array().unwrap() {
            let (text, chat) = prompt_text(model, &p["input_ids"]);
            let got = run("lens", model, &text, chat);
            let (got_layers, want_layers) = (got["layers"].as_array().unwrap(), p["logit_lens"].as_array().unwrap());
            assert_eq!(got_layers.len(), want_layers.len(), "{model}");
            for (g, w) in got_layers.iter().zip(want_layers) {
                assert_eq!(g["layer"], w["layer"]);
                let (gt, wt) = (g["top"].as_array().unwrap(), w["top5"].as_array().unwrap());
                assert_eq!(gt.len(), wt.len());
                for (a, b) in gt.iter().zip(wt) {
                    assert_eq!(a["id"], b["id"], "{model} layer {}", w["layer"]);
                    assert!((a["prob"].as_f64().unwrap() - b["prob"].as_f64().unwrap()).abs() < 1e-4);
                }
            }
            let (gn, wn) = (got["residual_norm"].as_array().unwrap(), p["residual_norm"].as_array().unwrap());
            assert_eq!(gn.len(), wn.len());
            for (g, w) in gn.iter().zip(wn) {
                let (g, w) = (g.as_array().unwrap(), w.as_array().unwrap());
                assert_eq!(g.len(), w.len());
                for (a, b) in g.iter().zip(w) {
                    assert!(close(a.as_f64().unwrap(), b.as_f64().unwrap(), 1e-4, 1e-6), "{model}: {a} vs {b}");
                }
            }
        }
    }
}

/// With a LoRA adapter attached, the base model's pass is recorded beside the adapted one:
/// its attention, residual stream and lens equal a session that never had the adapter, and
/// the adapted ones differ (the adapter changes q_proj and v_proj).
#[test]
fn base_and_adapted_internals_side_by_side() {
    use llm_anatomy::arch::ModelFolder;
    use llm_anatomy::engine::Session;
    use std::sync::Arc;
    let model = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let adapter = llm_anatomy::lora::LoraAdapter::open(&fixture("tiny-llama-lora"), &model, None).unwrap();
    let text = "The model has weights";
    let mut plain = Session::load(&model).unwrap();
    plain.set_internals(true).unwrap();
    plain.set_prompt(text, false).unwrap();
    let mut adapted = Session::load(&model).unwrap();
    adapted.set_internals(true).unwrap();
    adapted.set_adapter(Some((Arc::new(adapter), 1.0))).unwrap();
    adapted.set_prompt(text, false).unwrap();
    let (want, base, lora) =
        (plain.internals.clone().unwrap(), adapted.base_internals.clone().unwrap(), adapted.internals.clone().unwrap());
    assert_eq!(base.len(), want.len());
    let worst = |a: &llm_anatomy::engine::internals::Internals, b: &llm_anatomy::engine::internals::Internals| {
        a.attention
            .iter()
            .zip(&b.attention)
            .flat_map(|(x, y)| x.iter().zip(y.iter()).flat_map(|(u, v)| u.iter().zip(v).map(|(p, q)| (p - q).abs())))
            .fold(0f32, f32::max)
    };
    assert!(worst(&base, &want) < 1e-6, "base attention vs no adapter: {}", worst(&base, &want));
    assert!(worst(&lora, &want) > 1e-4, "the adapter changes attention");
    let last = want.len() - 1;
    let (lens_base, lens_plain) = (adapted.lens(last, true).unwrap(), plain.lens(last, false).unwrap());
    assert!(lens_base.base);
    for (a, b) in lens_base.probs.iter().zip(&lens_plain.probs) {
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6), "base lens equals the lens without the adapter");
    }
    // Stepping back forgets the base record's last position too.
    adapted.generate(2, &llm_anatomy::sampling::SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
    adapted.step_back().unwrap();
    assert_eq!(adapted.base_internals.as_ref().unwrap().len(), adapted.internals.as_ref().unwrap().len());
}
