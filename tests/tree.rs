//! The module tree text must equal transformers 4.57's `print(model)` for every family.

mod common;

use common::{MODEL_FIXTURES, fixture, reference};
use llm_anatomy::arch::{ArchConfig, ModelFolder, ROOT, families};

#[test]
fn tree_text_equals_transformers_repr_for_every_fixture() {
    for name in MODEL_FIXTURES {
        let model = ModelFolder::open(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let expected = reference(name)["repr_v4"].as_str().unwrap().to_string();
        let actual = model.repr();
        assert_eq!(actual, expected, "{name}: tree text differs from print(model)");
        assert!(model.notices.is_empty(), "{name}: unexpected notices {:?}", model.notices);
    }
}

#[test]
fn parameter_counts_match_reference() {
    for name in MODEL_FIXTURES {
        let model = ModelFolder::open(&fixture(name)).unwrap();
        let pc = &reference(name)["param_count"];
        let tree = &model.tree;
        assert_eq!(tree.unique_param_count(ROOT), pc["total"].as_u64().unwrap(), "{name} total");
        assert_eq!(tree.param_count(ROOT), pc["total_with_tied_duplicates"].as_u64().unwrap(), "{name} with tied");
        for (path, count) in pc["per_top_level_child"]
            .as_object()
            .unwrap()
            .iter()
            .chain(pc["per_second_level_child"].as_object().unwrap())
        {
            let id = tree.find(path).unwrap_or_else(|| panic!("{name}: no module {path}"));
            assert_eq!(tree.param_count(id), count.as_u64().unwrap(), "{name}: {path}");
        }
        let all = tree.all_param_counts();
        assert_eq!(all[ROOT], tree.param_count(ROOT));
    }
}

/// Families with no weight fixture: configs and reprs recorded from transformers 4.57.1
/// by tools/make_repr_cases.py.
#[test]
fn tree_text_equals_transformers_repr_for_config_only_cases() {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("repr-cases.json")).unwrap()).unwrap();
    let cases = cases["cases"].as_array().unwrap();
    assert!(cases.len() >= 14);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let cfg = ArchConfig::parse(&case["config"]).unwrap_or_else(|e| panic!("{name}: {e}"));
        let tree = families::build_tree(&cfg, 0.0);
        assert_eq!(tree.repr(ROOT), case["repr"].as_str().unwrap(), "{name}");
        assert_eq!(tree.unique_param_count(ROOT), case["num_parameters"].as_u64().unwrap(), "{name} parameters");
    }
}

#[test]
fn all_reprs_agree_with_recursive_repr() {
    let model = ModelFolder::open(&fixture("tiny-qwen2moe")).unwrap();
    let all = model.tree.all_reprs();
    for id in [ROOT, 1, 5, 20] {
        assert_eq!(all[id], model.tree.repr(id));
    }
}

/// transformers 4 and 5 write the same LlamaConfig with different keys (`rope_theta` + `rope_scaling` +
/// `torch_dtype` vs `rope_parameters` + `dtype`). Reference: the two fixture configs were written by
/// transformers 4.57.1 and 5.23 from the same model, so every parsed field must agree, not just two of them.
#[test]
fn v4_and_v5_config_keys_give_the_same_config() {
    use llm_anatomy::arch::config::RopeScaling;
    let v5 = ModelFolder::open(&fixture("tiny-llama")).unwrap().config.unwrap();
    let v4 = ModelFolder::open(&fixture("tiny-llama-v4config")).unwrap().config.unwrap();
    assert_eq!(v4.rope_theta, 10000.0);
    assert_eq!(v4.dtype.as_deref(), Some("float32"));
    assert_eq!(v4, v5, "the whole parsed config");

    // The same scaled RoPE written both ways. transformers 5 folds rope_theta into rope_parameters and names
    // the type `rope_type`; transformers 4 keeps rope_theta at the top and older files say `type`.
    let read = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(fixture(name).join("config.json")).unwrap()).unwrap()
    };
    let (base5, base4) = (read("tiny-llama"), read("tiny-llama-v4config"));
    let cases = [
        (serde_json::json!({"rope_type": "linear", "factor": 4.0}), RopeScaling::Linear { factor: 4.0 }),
        (
            serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                               "original_max_position_embeddings": 64}),
            RopeScaling::Llama3 { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_max: 64.0 },
        ),
        // "dynamic" NTK equals plain RoPE until the sequence outgrows max_position_embeddings
        // (transformers' _compute_dynamic_ntk_parameters at seq_len ≤ max_position_embeddings).
        (serde_json::json!({"rope_type": "dynamic", "factor": 2.0}), RopeScaling::Default),
    ];
    for (params, want) in cases {
        let mut c5 = base5.clone();
        let mut p5 = params.clone();
        p5["rope_theta"] = serde_json::json!(500000.0);
        c5["rope_parameters"] = p5;
        let mut c4 = base4.clone();
        let mut p4 = params.clone();
        let kind = p4.as_object_mut().unwrap().remove("rope_type").unwrap();
        p4["type"] = kind;
        c4["rope_scaling"] = p4;
        c4["rope_theta"] = serde_json::json!(500000.0);
        let (a5, a4) = (ArchConfig::parse(&c5).unwrap(), ArchConfig::parse(&c4).unwrap());
        assert_eq!(a5.rope_scaling, want, "{params}");
        assert_eq!(a5.rope_theta, 500000.0, "{params}");
        assert_eq!(a4, a5, "{params}: v4 and v5 spellings");
    }
}

#[test]
fn sharded_folder_lists_every_shard() {
    let model = ModelFolder::open(&fixture("tiny-llama-sharded")).unwrap();
    assert_eq!(model.checkpoint.shards.len(), 3);
    let t = model.checkpoint.tensor("lm_head.weight").unwrap();
    assert_eq!(model.checkpoint.shard_name(t), "model-00003-of-00003.safetensors");
}
