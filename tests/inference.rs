//! The forward pass, tokenizer, chat template and sampling against transformers' outputs.

mod common;

use common::{MODEL_FIXTURES, fixture, reference};
use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::{Session, TextCodec};
use llm_anatomy::sampling::{self, SamplingParams};

fn params(settings: &serde_json::Value) -> SamplingParams {
    SamplingParams {
        temperature: settings.get("temperature").and_then(|v| v.as_f64()).unwrap_or(1.0) as f32,
        top_k: settings.get("top_k").and_then(|v| v.as_u64()).unwrap_or(0) as usize,
        top_p: settings.get("top_p").and_then(|v| v.as_f64()).unwrap_or(1.0) as f32,
        min_p: settings.get("min_p").and_then(|v| v.as_f64()).unwrap_or(0.0) as f32,
        ..Default::default()
    }
}

/// The chat prompt's reference text is the rendered template; recover the user message.
fn user_message(rendered: &str) -> &str {
    rendered.trim_start_matches("<|im_start|>user\n").split("<|im_end|>").next().unwrap()
}

#[test]
fn every_fixture_matches_transformers_logits_probabilities_and_greedy_tokens() {
    for name in MODEL_FIXTURES {
        let folder = ModelFolder::open(&fixture(name)).unwrap();
        let mut session = Session::load(&folder).unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = reference(name);
        for prompt in r["prompts"].as_array().unwrap() {
            let pname = prompt["name"].as_str().unwrap();
            let text = prompt["text"].as_str().unwrap();
            let chat = pname == "chat";
            let input = if chat { user_message(text) } else { text };
            session.set_prompt(input, chat).unwrap();
            let want_ids: Vec<u32> = serde_json::from_value(prompt["input_ids"].clone()).unwrap();
            assert_eq!(session.tokens, want_ids, "{name}/{pname}: input ids");

            let logits = session.current_logits().unwrap();
            for entry in prompt["raw_logits_top20"].as_array().unwrap() {
                let id = entry["id"].as_u64().unwrap() as usize;
                let want = entry["logit"].as_f64().unwrap() as f32;
                assert!((logits[id] - want).abs() < 1e-3, "{name}/{pname}: logit of {id}: {} vs {want}", logits[id]);
            }
            for (setting, s) in prompt["samplers"].as_object().unwrap() {
                let d = sampling::distribution(&logits, &session.tokens, &params(&s["settings"]));
                assert_eq!(d.kept as u64, s["n_kept"].as_u64().unwrap(), "{name}/{pname}/{setting}: tokens kept");
                let top = s["top20"].as_array().unwrap();
                for (rank, entry) in top.iter().enumerate() {
                    let id = entry["id"].as_u64().unwrap() as u32;
                    let want = entry["prob"].as_f64().unwrap() as f32;
                    let got = d.probs[id as usize];
                    assert!((got - want).abs() < 1e-4, "{name}/{pname}/{setting}: p({id}) {got} vs {want}");
                    // Same ranking, except where two probabilities are closer than our tolerance.
                    let ours = d.order[rank];
                    if ours != id {
                        let gap = (d.probs[ours as usize] - want).abs();
                        assert!(gap < 1e-4, "{name}/{pname}/{setting}: rank {rank} is {ours}, transformers has {id}");
                    }
                }
            }
            let want_greedy: Vec<u32> = serde_json::from_value(prompt["greedy_ids"].clone()).unwrap();
            let greedy = session
                .generate(want_greedy.len(), &SamplingParams { temperature: 0.0, ..Default::default() })
                .unwrap();
            assert_eq!(greedy, want_greedy, "{name}/{pname}: greedy continuation");
            assert_eq!(session.codec.decode(&greedy), prompt["greedy_text"].as_str().unwrap());
        }
    }
}

#[test]
fn moe_router_probabilities_and_choices_match_transformers() {
    for name in ["tiny-mixtral", "tiny-qwen2moe"] {
        let folder = ModelFolder::open(&fixture(name)).unwrap();
        let mut session = Session::load(&folder).unwrap();
        let r = reference(name);
        let norm = r["router"]["norm_topk_prob"].as_bool().unwrap();
        let top_k = r["router"]["top_k"].as_u64().unwrap() as usize;
        for prompt in r["router"]["prompts"].as_array().unwrap() {
            let ids: Vec<u32> = serde_json::from_value(prompt["input_ids"].clone()).unwrap();
            session.set_prompt_ids(ids.clone()).unwrap();
            for layer in prompt["layers"].as_array().unwrap() {
                let l = layer["layer"].as_u64().unwrap() as usize;
                for tok in layer["tokens"].as_array().unwrap() {
                    let pos = tok["position"].as_u64().unwrap() as usize;
                    let logits = &session.routing[pos].iter().find(|(layer, _)| *layer == l).unwrap().1;
                    let probs = sampling::softmax(logits);
                    let want: Vec<f32> = serde_json::from_value(tok["probs"].clone()).unwrap();
                    assert_eq!(probs.len(), want.len(), "{name} layer {l}: number of experts");
                    for (e, (g, w)) in probs.iter().zip(&want).enumerate() {
                        assert!((g - w).abs() < 1e-5, "{name} layer {l} pos {pos} expert {e}: {g} vs {w}");
                    }
                    let chosen = llm_anatomy::engine::model::top_k_ids(&probs, top_k);
                    let want_ids: Vec<usize> = serde_json::from_value(tok["topk_ids"].clone()).unwrap();
                    assert_eq!(chosen, want_ids, "{name} layer {l} pos {pos}");
                    let total: f32 = chosen.iter().map(|&e| probs[e]).sum();
                    let want_w: Vec<f32> = serde_json::from_value(tok["topk_weights"].clone()).unwrap();
                    assert_eq!(chosen.len(), want_w.len(), "{name} layer {l} pos {pos}: one weight per expert");
                    for (&e, w) in chosen.iter().zip(&want_w) {
                        let got = if norm { probs[e] / total } else { probs[e] };
                        assert!((got - w).abs() < 1e-5);
                    }
                    if let Some(g) = tok.get("shared_expert_gate_sigmoid") {
                        let ours = session.shared_gate[pos].iter().find(|(layer, _)| *layer == l).unwrap().1;
                        assert!((ours as f64 - g.as_f64().unwrap()).abs() < 1e-5);
                    }
                }
            }
        }
    }
}

#[test]
fn tokenizer_and_chat_template_match_transformers() {
    let codec = TextCodec::load(&fixture("tiny-tokenizer")).unwrap();
    let r = reference("tiny-tokenizer");
    for e in r["encodings"].as_array().unwrap() {
        let text = e["text"].as_str().unwrap();
        let ids: Vec<u32> = serde_json::from_value(e["ids"].clone()).unwrap();
        assert_eq!(codec.encode(text, false).unwrap(), ids, "{text:?}");
        assert_eq!(codec.decode(&ids), e["decoded"].as_str().unwrap());
        let per: Vec<String> = serde_json::from_value(e["per_token_text"].clone()).unwrap();
        let tokens: Vec<String> = serde_json::from_value(e["tokens"].clone()).unwrap();
        assert_eq!((per.len(), tokens.len()), (ids.len(), ids.len()), "{text:?}: one piece per id");
        for ((id, text), token) in ids.iter().zip(per).zip(tokens) {
            let piece = codec.piece(*id);
            assert_eq!(piece.text, text);
            assert_eq!(piece.token, token);
        }
    }
    let chat = &r["chat_example"];
    let messages: Vec<(String, String)> = chat["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["role"].as_str().unwrap().to_string(), m["content"].as_str().unwrap().to_string()))
        .collect();
    let borrowed: Vec<(&str, &str)> = messages.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let rendered = codec.render_chat(&borrowed, true).unwrap();
    assert_eq!(rendered, chat["text"].as_str().unwrap());
    let ids: Vec<u32> = serde_json::from_value(chat["ids"].clone()).unwrap();
    assert_eq!(codec.encode(&rendered, true).unwrap(), ids);
    assert!(codec.piece(1).special && codec.piece(1).token == "<|im_start|>");
}

#[test]
fn step_back_restores_the_previous_distribution() {
    let folder = ModelFolder::open(&fixture("tiny-llama")).unwrap();
    let mut s = Session::load(&folder).unwrap();
    s.set_prompt("The model has weights", false).unwrap();
    // Reference: transformers' greedy continuation of this prompt.
    let greedy: Vec<u32> = serde_json::from_value(reference("tiny-llama")["prompts"][0]["greedy_ids"].clone()).unwrap();
    let before = s.current_logits().unwrap();
    s.append(greedy[0]).unwrap();
    s.append(greedy[1]).unwrap();
    assert!(s.step_back().unwrap());
    assert!(s.step_back().unwrap());
    assert!(!s.step_back().unwrap(), "the prompt itself stays");
    assert_eq!(s.current_logits().unwrap(), before);
    // And the cache was truncated consistently: the same continuation again.
    let again = s.generate(3, &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
    assert_eq!(again, greedy[..3]);
}

#[test]
fn unknown_architecture_refuses_inference_with_a_reason() {
    let (_dir, folder) = common::copy_fixture("tiny-llama");
    let cfg = std::fs::read_to_string(folder.join("config.json"))
        .unwrap()
        .replace("\"llama\"", "\"mystery\"")
        .replace("LlamaForCausalLM", "MysteryForCausalLM");
    std::fs::write(folder.join("config.json"), cfg).unwrap();
    let folder = ModelFolder::open(&folder).unwrap();
    let err = Session::load(&folder).err().unwrap();
    assert!(err.contains("inference needs one of the supported families"), "{err}");
}

#[test]
fn probs_and_generate_cli_json() {
    let path = fixture("tiny-qwen2");
    let v = common::cli_json(&[
        "probs",
        path.to_str().unwrap(),
        "--prompt",
        "The model has weights",
        "--temperature",
        "0.7",
        "--top-p",
        "0.9",
        "--top",
        "5",
        "--json",
    ]);
    let r = reference("tiny-qwen2");
    assert_eq!(v["input_ids"], r["prompts"][0]["input_ids"]);
    let cands = v["candidates"].as_array().unwrap();
    assert_eq!(cands.len(), 5);
    let want = &r["prompts"][0]["samplers"]["t0.7_p0.9"]["top20"];
    assert!(want.as_array().unwrap().len() >= cands.len());
    for (c, w) in cands.iter().zip(want.as_array().unwrap()) {
        for key in ["id", "token", "prob", "raw_prob", "logit"] {
            assert!(c.get(key).is_some(), "missing {key}");
        }
        assert_eq!(c["id"], w["id"]);
        assert!((c["prob"].as_f64().unwrap() - w["prob"].as_f64().unwrap()).abs() < 1e-4);
    }
    let v = common::cli_json(&[
        "generate",
        path.to_str().unwrap(),
        "--prompt",
        "What is a weight?",
        "--chat",
        "--max-new",
        "12",
        "--temperature",
        "0",
        "--json",
    ]);
    assert_eq!(v["input_ids"], r["prompts"][2]["input_ids"]);
    assert_eq!(v["new_ids"], r["prompts"][2]["greedy_ids"]);
    assert_eq!(v["text"], r["prompts"][2]["greedy_text"]);
}

/// The experts each MoE block actually ran, and the weights it mixed them with, read from the
/// forward pass itself (not recomputed from the router logits), against transformers' forward
/// hooks on the router: `topk_ids` in torch.topk's order and the applied `topk_weights`.
#[test]
fn moe_blocks_run_the_experts_transformers_runs() {
    for name in ["tiny-mixtral", "tiny-qwen2moe"] {
        let folder = llm_anatomy::arch::ModelFolder::open(&common::fixture(name)).unwrap();
        let session = llm_anatomy::engine::Session::load(&folder).unwrap();
        let r = common::reference(name);
        let prompts = r["router"]["prompts"].as_array().unwrap();
        assert!(!prompts.is_empty());
        for p in prompts {
            let ids: Vec<u32> = p["input_ids"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
            let mut cache = session.model.new_cache();
            let mut probes = llm_anatomy::engine::Probes::default();
            session.model.next_token_logits(&ids, &mut cache, Some(&mut probes)).unwrap();
            let layers = p["layers"].as_array().unwrap();
            assert_eq!(probes.expert_choice.len(), layers.len(), "{name}: MoE layers");
            for ((layer, used_ids, used_w), want) in probes.expert_choice.iter().zip(layers) {
                assert_eq!(*layer as u64, want["layer"].as_u64().unwrap());
                let tokens = want["tokens"].as_array().unwrap();
                assert_eq!(used_ids.len(), tokens.len(), "{name} layer {layer}: tokens");
                for ((got_ids, got_w), tok) in used_ids.iter().zip(used_w).zip(tokens) {
                    let want_ids: Vec<usize> = serde_json::from_value(tok["topk_ids"].clone()).unwrap();
                    assert_eq!(got_ids, &want_ids, "{name} layer {layer} position {}", tok["position"]);
                    let want_w: Vec<f32> = serde_json::from_value(tok["topk_weights"].clone()).unwrap();
                    assert_eq!(got_w.len(), want_w.len());
                    for (g, w) in got_w.iter().zip(&want_w) {
                        assert!((g - w).abs() < 1e-5, "{name} layer {layer}: weight {g} vs {w}");
                    }
                }
            }
        }
    }
}

/// A generated token runs through the fused one-token step (dense models), a prompt through
/// the general forward: the two must give the same logits for the same sequence, on every
/// family the fixtures have (biases, q/k norms, GQA, tied and untied heads, BF16 weights).
/// Run one way as a prompt and the other as prompt + appended token; both are checked
/// against transformers elsewhere, so a step that drifts fails here first.
#[test]
fn a_one_token_step_equals_the_full_forward_of_the_same_sequence() {
    let families = ["tiny-qwen3", "tiny-mistral", "tiny-llama-rope-llama3", "tiny-qwen2-yarn", "tiny-olmoe"];
    let folders = MODEL_FIXTURES.iter().map(|n| fixture(n)).chain(families.iter().map(|n| fixture("families").join(n)));
    for path in folders {
        let folder = ModelFolder::open(&path).unwrap();
        let mut session = Session::load(&folder).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let ids: Vec<u32> = (0..9u32).map(|i| (i * 37 + 5) % 200).collect();
        session.set_prompt_ids(ids[..6].to_vec()).unwrap();
        let mut stepped = Vec::new();
        for &id in &ids[6..] {
            session.append(id).unwrap();
            stepped.push(session.current_logits().unwrap());
        }
        for (n, step) in (7..=9).zip(&stepped) {
            session.set_prompt_ids(ids[..n].to_vec()).unwrap();
            let whole = session.current_logits().unwrap();
            assert_eq!(step.len(), whole.len());
            let scale = whole.iter().fold(1f32, |m, v| m.max(v.abs()));
            for (i, (a, b)) in step.iter().zip(whole.iter()).enumerate() {
                assert!(
                    (a - b).abs() <= 2e-5 * scale,
                    "{} after {n} tokens, logit {i}: step {a} vs forward {b}",
                    path.display()
                );
            }
        }
    }
}
