//! MiniMind, as the course loads it: the v1 `.pth` (MiniMindLM, config inferred from shapes
//! and `lmconfig.json`), its LoRA, and the Hugging Face-style v2 folder, against references
//! made by MiniMind's own code (`tests/fixtures/minimind/README.md`).

mod common;

use std::sync::Arc;

use common::{close, fixture};
use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::Session;
use llm_anatomy::lora::LoraAdapter;
use llm_anatomy::sampling::{self, SamplingParams};

fn reference(name: &str) -> serde_json::Value {
    let path = fixture(&format!("minimind/{name}.reference.json"));
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn user_message(rendered: &str) -> &str {
    rendered.trim_start_matches("<|im_start|>user\n").split("<|im_end|>").next().unwrap()
}

/// Every prompt of a reference: ids, both samplers' top-20 within 1e-4, the last logits,
/// and the greedy tokens.
fn check_prompts(name: &str, session: &mut Session, r: &serde_json::Value) {
    for prompt in r["prompts"].as_array().unwrap() {
        let pname = prompt["name"].as_str().unwrap();
        let text = prompt["text"].as_str().unwrap();
        let chat = pname == "chat";
        session.set_prompt(if chat { user_message(text) } else { text }, chat).unwrap();
        let want_ids: Vec<u32> = serde_json::from_value(prompt["input_ids"].clone()).unwrap();
        assert_eq!(session.tokens, want_ids, "{name}/{pname}: input ids");
        let logits = session.current_logits().unwrap();
        let want: Vec<f32> = serde_json::from_value(prompt["last_logits"].clone()).unwrap();
        let worst = logits.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-4, "{name}/{pname}: last logits differ by up to {worst}");
        for (setting, s) in prompt["samplers"].as_object().unwrap() {
            let settings = &s["settings"];
            let params = SamplingParams {
                temperature: settings["temperature"].as_f64().unwrap_or(1.0) as f32,
                top_p: settings.get("top_p").and_then(|v| v.as_f64()).unwrap_or(1.0) as f32,
                ..Default::default()
            };
            let d = sampling::distribution(&logits, &session.tokens, &params);
            assert_eq!(d.kept as u64, s["n_kept"].as_u64().unwrap(), "{name}/{pname}/{setting}: tokens kept");
            for (rank, entry) in s["top20"].as_array().unwrap().iter().enumerate() {
                let id = entry["id"].as_u64().unwrap() as u32;
                let want = entry["prob"].as_f64().unwrap() as f32;
                let got = d.probs[id as usize];
                assert!((got - want).abs() < 1e-4, "{name}/{pname}/{setting}: p({id}) {got} vs {want}");
                let ours = d.order[rank];
                assert!(ours == id || (d.probs[ours as usize] - want).abs() < 1e-4, "{name}/{pname}: rank {rank}");
            }
        }
        let greedy: Vec<u32> = serde_json::from_value(prompt["greedy_ids"].clone()).unwrap();
        let ours = session.generate(greedy.len(), &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
        assert_eq!(ours, greedy, "{name}/{pname}: greedy continuation");
    }
}

#[test]
fn the_v1_pth_opens_as_minimind_prints_it_and_runs_as_minimind_computes() {
    let r = reference("tiny-minimind-v1");
    let pth = fixture("minimind/tiny-minimind-v1/full_sft_64.pth");
    let model = ModelFolder::open(&pth).unwrap();
    assert_eq!(model.repr(), r["repr"].as_str().unwrap());
    assert_eq!(model.tree.unique_param_count(0), r["param_count"]["total_unique"].as_u64().unwrap());
    // The Inspector says where the config came from: n_heads is not in the shapes.
    let told = model.notices.join("\n");
    assert!(told.contains("n_heads 4 (lmconfig.json)") && told.contains("dim 64"), "{told}");
    // The folder holding the .pth opens the same model (the lora/ folder is not a model).
    assert_eq!(ModelFolder::open(pth.parent().unwrap()).unwrap().repr(), model.repr());
    let mut session = Session::load(&model).unwrap();
    check_prompts("tiny-minimind-v1", &mut session, &r);
}

/// Without lmconfig.json the loader takes LMConfig's n_heads = 8 and says it assumed it;
/// this fixture was built with 4, so the numbers differ (the reason the file is read).
#[test]
fn without_lmconfig_the_defaults_are_assumed_and_said() {
    let dir = tempfile::tempdir().unwrap();
    let pth = dir.path().join("full_sft_64.pth");
    std::fs::copy(fixture("minimind/tiny-minimind-v1/full_sft_64.pth"), &pth).unwrap();
    let model = ModelFolder::open(&pth).unwrap();
    let told = model.notices.join("\n");
    assert!(told.contains("Assumed from MiniMind's LMConfig defaults") && told.contains("n_heads 8"), "{told}");
    assert_eq!(model.config.as_ref().unwrap().head_dim, 8);
}

#[test]
fn the_v1_lora_applies_as_the_course_applies_it() {
    let r = reference("tiny-minimind-v1-lora");
    let model = ModelFolder::open(&fixture("minimind/tiny-minimind-v1/full_sft_64.pth")).unwrap();
    let adapter = LoraAdapter::open(&fixture("minimind/tiny-minimind-v1/lora/lora_identity_64.pth"), &model, None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(adapter.scaling, 1.0, "MiniMind's LoRA adds B(A(x)) with no α");
    let wrapped = llm_anatomy::arch::peft::wrap(&model.tree, &adapter);
    assert_eq!(wrapped.repr(0), r["repr_with_lora"].as_str().unwrap());
    for want in r["modules"].as_array().unwrap() {
        let name = want["module"].as_str().unwrap();
        let m = adapter.module(name).unwrap_or_else(|| panic!("module {name}"));
        let (rank, n, k) = (m.rank, m.out_features, m.in_features);
        let mut fro = 0f64;
        for i in 0..n {
            for j in 0..k {
                let v: f64 = (0..rank).map(|t| m.b[i * rank + t] as f64 * m.a[t * k + j] as f64).sum();
                fro += v * v;
            }
        }
        let want_fro = want["fro_BA"].as_f64().unwrap();
        assert!(close(fro.sqrt(), want_fro, 1e-4, 0.0), "{name}: ‖B·A‖ {} vs {want_fro}", fro.sqrt());
    }
    let mut session = Session::load(&model).unwrap();
    session.set_adapter(Some((Arc::new(adapter), 1.0))).unwrap();
    check_prompts("tiny-minimind-v1-lora", &mut session, &r);
}

#[test]
fn the_v2_folder_opens_as_minimind_prints_it_and_runs_as_minimind_computes() {
    let r = reference("tiny-minimind-v2");
    let model = ModelFolder::open(&fixture("minimind/tiny-minimind-v2")).unwrap();
    assert_eq!(model.repr(), r["repr"].as_str().unwrap());
    assert!(model.notices.iter().any(|n| n.contains("never runs it")), "{:?}", model.notices);
    let mut session = Session::load(&model).unwrap();
    check_prompts("tiny-minimind-v2", &mut session, &r);
}
