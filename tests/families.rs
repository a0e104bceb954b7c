//! Families without a shared fixture (Mistral, Qwen3, Qwen3-MoE with a dense layer,
//! OLMoE with clip_qkv) and RoPE scaling (llama3, linear, yarn), against transformers 4.57.1
//! on tiny random-weight folders made by tools/make_family_fixtures.py: tree text,
//! next-token logits, greedy tokens, router.

mod common;

use common::fixture;
use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::Session;
use llm_anatomy::sampling::{SamplingParams, softmax};

#[test]
fn extra_families_match_transformers() {
    for name in [
        "tiny-mistral",
        "tiny-qwen3",
        "tiny-qwen3moe",
        "tiny-olmoe",
        "tiny-llama-rope-llama3",
        "tiny-llama-rope-linear",
        "tiny-qwen2-yarn",
    ] {
        let dir = fixture("families").join(name);
        let r: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(fixture("families").join(format!("{name}.reference.json"))).unwrap(),
        )
        .unwrap();
        let folder = ModelFolder::open(&dir).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The reference ran with eager attention; print(model) with the default (sdpa)
        // implementation names OLMoE's attention class OlmoeSdpaAttention (see repr-cases.json).
        let want_repr =
            r["repr"].as_str().unwrap().replace("(self_attn): OlmoeAttention(", "(self_attn): OlmoeSdpaAttention(");
        assert_eq!(folder.repr(), want_repr, "{name}: tree");
        let mut s = Session::load(&folder).unwrap();
        let ids: Vec<u32> = serde_json::from_value(r["input_ids"].clone()).unwrap();
        s.set_prompt_ids(ids).unwrap();
        let want: Vec<f32> = serde_json::from_value(r["last_logits"].clone()).unwrap();
        let got = s.current_logits().unwrap();
        assert_eq!(got.len(), want.len(), "{name}: vocabulary size of the logits");
        let worst = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(worst < 1e-3, "{name}: logits differ by up to {worst}");
        if let Some(router) = r.get("router_probs") {
            let layers = router.as_array().unwrap();
            let moe_layers: Vec<usize> = s.routing[0].iter().map(|(l, _)| *l).collect();
            assert_eq!(moe_layers.len(), layers.len(), "{name}: MoE layers");
            for (k, layer) in layers.iter().enumerate() {
                let rows = layer.as_array().unwrap();
                assert_eq!(rows.len(), s.tokens.len(), "{name}: one router row per prompt token");
                assert_eq!(s.routing.len(), rows.len(), "{name}: routing recorded for every position");
                for (pos, row) in rows.iter().enumerate() {
                    let want: Vec<f32> = serde_json::from_value(row.clone()).unwrap();
                    let got = softmax(&s.routing[pos][k].1);
                    assert_eq!(got.len(), want.len(), "{name}: experts in layer {}", moe_layers[k]);
                    for (a, b) in got.iter().zip(&want) {
                        assert!((a - b).abs() < 1e-5, "{name}: router layer {} pos {pos}", moe_layers[k]);
                    }
                }
            }
        }
        let greedy: Vec<u32> = serde_json::from_value(r["greedy_ids"].clone()).unwrap();
        let ours = s.generate(greedy.len(), &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
        assert_eq!(ours, greedy, "{name}: greedy continuation");
    }
}

#[test]
fn rope_scaling_changes_the_frequencies_and_unknown_types_refuse_to_run() {
    use llm_anatomy::arch::config::RopeScaling;
    for name in ["tiny-llama-rope-llama3", "tiny-llama-rope-linear", "tiny-qwen2-yarn"] {
        let folder = ModelFolder::open(&fixture("families").join(name)).unwrap();
        let mut cfg = folder.config.clone().unwrap();
        assert_ne!(cfg.rope_scaling, RopeScaling::Default, "{name}");
        let scaled = llm_anatomy::engine::model::inv_freq(&cfg).unwrap();
        cfg.rope_scaling = RopeScaling::Default;
        // The fixtures are only a test of the scaling if it changes what the model computes.
        assert_ne!(scaled, llm_anatomy::engine::model::inv_freq(&cfg).unwrap(), "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    let src = fixture("families").join("tiny-llama-rope-linear");
    for f in std::fs::read_dir(&src).unwrap() {
        let f = f.unwrap().path();
        std::fs::copy(&f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    let cfg_path = dir.path().join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    cfg["rope_scaling"] = serde_json::json!({"rope_type": "longrope", "short_factor": [1.0], "long_factor": [1.0]});
    std::fs::write(&cfg_path, cfg.to_string()).unwrap();
    let folder = ModelFolder::open(dir.path()).expect("the tree still opens");
    let err = Session::load(&folder).err().expect("longrope cannot run");
    assert!(err.contains("longrope"), "{err}");
}
