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

/// Every line of `lines` appears in the tree text.
fn assert_tree_has(tree: &str, lines: &[&str]) {
    for line in lines {
        assert!(tree.contains(line), "{line} missing from\n{tree}");
    }
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

/// A MiniMindLM with the MoE feed-forward (4 routed experts, top-2, a shared expert), saved
/// as MiniMind2's trainers save it (`v.half()`), a model no fixture has. Its arithmetic is
/// checked by an identity: with every expert and the shared expert equal to one FFN, the
/// renormalised top-2 mix is that FFN and the shared expert adds it once more, so the logits
/// equal a dense twin whose w2 is doubled. The F16 file also equals its F32 copy.
#[test]
fn a_half_precision_moe_pth_opens_routes_and_computes_minimind_moe() {
    let (dim, hidden, kv, layers, experts) = (32usize, 64usize, 16usize, 2usize, 4usize);
    let mut seed = 1u64;
    let mut rand = |n: usize, scale: f32, base: f32| -> Vec<f32> {
        (0..n)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let u = (seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
                half::f16::from_f32(base + scale * u).to_f32()
            })
            .collect()
    };
    let vocab = 1024;
    let mut common: Vec<(String, Vec<usize>, Vec<f32>)> =
        vec![("tok_embeddings.weight".into(), vec![vocab, dim], rand(vocab * dim, 0.8, 0.0))];
    let mut ffns = Vec::new();
    for l in 0..layers {
        for (n, shape) in [("wq", [dim, dim]), ("wk", [kv, dim]), ("wv", [kv, dim]), ("wo", [dim, dim])] {
            common.push((
                format!("layers.{l}.attention.{n}.weight"),
                shape.to_vec(),
                rand(shape[0] * shape[1], 0.6, 0.0),
            ));
        }
        for n in ["attention_norm", "ffn_norm"] {
            common.push((format!("layers.{l}.{n}.weight"), vec![dim], rand(dim, 0.2, 1.0)));
        }
        ffns.push([rand(hidden * dim, 0.6, 0.0), rand(dim * hidden, 0.6, 0.0), rand(hidden * dim, 0.6, 0.0)]);
    }
    // The final norm is exact in F16; output.weight shares tok_embeddings' storage (tied).
    let norm = (0..dim).map(|i| half::f16::from_f32(1.0 + 0.01 * i as f32).to_f32()).collect();
    common.push(("norm.weight".into(), vec![dim], norm));
    common.push(("output.weight".into(), vec![vocab, dim], vec![0.0; vocab * dim]));
    let ffn = |prefix: &str, w: &[Vec<f32>; 3], down_scale: f32| -> Vec<(String, Vec<usize>, Vec<f32>)> {
        vec![
            (format!("{prefix}.w1.weight"), vec![hidden, dim], w[0].clone()),
            (format!("{prefix}.w2.weight"), vec![dim, hidden], w[1].iter().map(|x| x * down_scale).collect()),
            (format!("{prefix}.w3.weight"), vec![hidden, dim], w[2].clone()),
        ]
    };
    let mut moe = common.clone();
    let mut dense = common.clone();
    for (l, w) in ffns.iter().enumerate() {
        for e in 0..experts {
            moe.extend(ffn(&format!("layers.{l}.feed_forward.experts.{e}"), w, 1.0));
        }
        moe.push((format!("layers.{l}.feed_forward.gate.weight"), vec![experts, dim], rand(experts * dim, 2.0, 0.0)));
        moe.extend(ffn(&format!("layers.{l}.feed_forward.shared_experts"), w, 1.0));
        dense.extend(ffn(&format!("layers.{l}.feed_forward"), w, 2.0));
    }
    let dir = tempfile::tempdir().unwrap();
    let write_with = |name: &str, tensors: &[(String, Vec<usize>, Vec<f32>)], half: bool, tied: &[(&str, &str)]| {
        let sub = dir.path().join(name);
        std::fs::create_dir(&sub).unwrap();
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(fixture("minimind/tiny-minimind-v1").join(f), sub.join(f)).unwrap();
        }
        std::fs::write(sub.join("lmconfig.json"), r#"{"n_heads": 4}"#).unwrap();
        let path = sub.join("full_sft_32.pth");
        common::write_torch_state_dict(&path, tensors, half, tied);
        path
    };
    let write = |name: &str, tensors: &[(String, Vec<usize>, Vec<f32>)], half: bool| {
        write_with(name, tensors, half, &[("output.weight", "tok_embeddings.weight")])
    };
    let (moe_half, moe_f32, dense_f32) =
        (write("moe16", &moe, true), write("moe32", &moe, false), write("dense", &dense, false));
    let model = ModelFolder::open(&moe_half).unwrap_or_else(|e| panic!("{e}"));
    let tree = model.repr();
    assert_tree_has(
        &tree,
        &[
            "(feed_forward): MOEFeedForward(",
            "(0-3): 4 x FeedForward(",
            "(gate): MoEGate()",
            "(shared_experts): FeedForward(",
        ],
    );
    assert!(
        tree.find("(experts)").unwrap() < tree.find("(gate)").unwrap(),
        "MOEFeedForward registers experts, gate, shared_experts"
    );
    let told = model.notices.join("\n");
    assert!(told.contains("4 routed experts") && told.contains("num_experts_per_tok 2"), "{told}");
    let ids = vec![5, 77, 300, 12, 900, 41];
    let logits_of = |path: &std::path::Path| {
        let mut s = Session::load(&ModelFolder::open(path).unwrap()).unwrap();
        s.set_prompt_ids(ids.clone()).unwrap();
        let greedy = s.generate(4, &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
        (s.current_logits().unwrap().to_vec(), greedy, s)
    };
    let (half_logits, half_greedy, session) = logits_of(&moe_half);
    // Routing is recorded for the Routing panel: every position, both layers, 4 experts.
    assert_eq!(session.routing.len(), ids.len() + 4);
    assert!(session.routing.iter().all(|pos| pos.len() == layers && pos.iter().all(|(_, r)| r.len() == experts)));
    let (f32_logits, f32_greedy, _) = logits_of(&moe_f32);
    let (dense_logits, dense_greedy, _) = logits_of(&dense_f32);
    let diff = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(diff(&half_logits, &f32_logits) < 1e-5, "F16 vs F32 file: {}", diff(&half_logits, &f32_logits));
    assert_eq!(half_greedy, f32_greedy);
    assert!(diff(&half_logits, &dense_logits) < 1e-4, "MoE vs dense twin: {}", diff(&half_logits, &dense_logits));
    assert_eq!(half_greedy, dense_greedy);

    // MiniMind's trainer saves `{k: v.half() for k, v in state_dict.items()}`: the tied
    // output.weight becomes a second copy of the embeddings, which the tree still owns.
    let mut copies = moe.clone();
    let embeddings = copies[0].2.clone();
    copies.iter_mut().find(|t| t.0 == "output.weight").unwrap().2 = embeddings;
    let copied = write_with("moe16-copies", &copies, true, &[]);
    let folder = ModelFolder::open(&copied).unwrap();
    assert!(!folder.notices.iter().any(|n| n.contains("no module")), "{:?}", folder.notices);
    let (copied_logits, ..) = logits_of(&copied);
    assert_eq!(copied_logits, half_logits);
}

/// A .pth model whose pickle names code is refused by name, and nothing runs.
#[test]
fn a_pth_model_naming_code_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.pth");
    let mut p = vec![0x80, 2];
    p.extend(b"cos\nsystem\n");
    p.extend(b"(X\x05\x00\x00\x00touch tR.");
    let mut zip = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("archive/data.pkl", stored).unwrap();
    std::io::Write::write_all(&mut zip, &p).unwrap();
    zip.finish().unwrap();
    let err = ModelFolder::open(&path).err().expect("refused").to_string();
    assert!(err.contains("os.system") && err.contains("evil.pth") && err.contains("Nothing was executed"), "{err}");
}

/// The v2 folder's MoE option (`use_moe`), on a model no fixture has: MiniMind's tree
/// (`MOEFeedForward` with `gate`, `experts`, `act_fn`), and with every expert equal to one
/// FFN the top-1 mix (renormalised to weight 1) is that FFN, so the logits equal the dense
/// twin's.
#[test]
fn the_v2_moe_option_builds_minimind_s_tree_and_mixes_its_experts() {
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("minimind/tiny-minimind-v2/config.json")).unwrap())
            .unwrap();
    let (h, kv, inter, experts) = (64usize, 32usize, 256usize, 4usize);
    let mut dense: Vec<(String, Vec<usize>)> = vec![("model.embed_tokens.weight".into(), vec![1024, h])];
    for l in 0..2 {
        let p = format!("model.layers.{l}");
        for (n, s) in [
            ("self_attn.q_proj.weight", vec![h, h]),
            ("self_attn.k_proj.weight", vec![kv, h]),
            ("self_attn.v_proj.weight", vec![kv, h]),
            ("self_attn.o_proj.weight", vec![h, h]),
            ("self_attn.q_norm.weight", vec![16]),
            ("self_attn.k_norm.weight", vec![16]),
            ("input_layernorm.weight", vec![h]),
            ("post_attention_layernorm.weight", vec![h]),
        ] {
            dense.push((format!("{p}.{n}"), s));
        }
    }
    dense.push(("model.norm.weight".into(), vec![h]));
    let mut moe = dense.clone();
    for l in 0..2 {
        for (n, s) in [("gate_proj", vec![inter, h]), ("up_proj", vec![inter, h]), ("down_proj", vec![h, inter])] {
            dense.push((format!("model.layers.{l}.mlp.{n}.weight"), s.clone()));
            for e in 0..experts {
                moe.push((format!("model.layers.{l}.mlp.experts.{e}.{n}.weight"), s.clone()));
            }
        }
        moe.push((format!("model.layers.{l}.mlp.gate.weight"), vec![experts, h]));
    }
    // Values by the dense tensor a name stands for, so expert e of a layer is its FFN.
    let value = |name: &str, i: usize| -> f32 {
        let key = match name.split_once(".experts.") {
            Some((layer, rest)) => format!("{layer}.{}", rest.split_once('.').unwrap().1),
            None => name.to_string(),
        };
        let seed = key.bytes().fold(7u64, |a, b| a.wrapping_mul(31).wrapping_add(b as u64));
        let x = ((seed as usize + i * 2654435761) % 10007) as f32 / 10007.0 - 0.5;
        if name.ends_with("norm.weight") { 1.0 + 0.2 * x } else { 0.5 * x }
    };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, tensors: &[(String, Vec<usize>)], moe: bool| {
        let folder = dir.path().join(name);
        std::fs::create_dir(&folder).unwrap();
        let mut cfg = base.clone();
        cfg["use_moe"] = serde_json::json!(moe);
        cfg["dtype"] = serde_json::json!("float32");
        std::fs::write(folder.join("config.json"), cfg.to_string()).unwrap();
        for f in ["tokenizer.json", "tokenizer_config.json"] {
            std::fs::copy(fixture("minimind/tiny-minimind-v2").join(f), folder.join(f)).unwrap();
        }
        let list: Vec<(&str, Vec<usize>)> = tensors.iter().map(|(n, s)| (n.as_str(), s.clone())).collect();
        common::write_f32_safetensors(&folder.join("model.safetensors"), &list, |t, i| value(&tensors[t].0, i));
        folder
    };
    let (moe_dir, dense_dir) = (write("moe", &moe, true), write("dense", &dense, false));
    let model = ModelFolder::open(&moe_dir).unwrap_or_else(|e| panic!("{e}"));
    let tree = model.repr();
    assert_tree_has(
        &tree,
        &[
            "(mlp): MOEFeedForward(",
            "(gate): Linear(in_features=64, out_features=4, bias=False)",
            "(0-3): 4 x FeedForward(",
        ],
    );
    let act = tree.rfind("(act_fn): SiLUActivation()").unwrap();
    assert!(tree.find("(experts)").unwrap() < act, "MOEFeedForward's act_fn comes after its experts");
    let run = |folder: &std::path::Path| {
        let mut s = Session::load(&ModelFolder::open(folder).unwrap()).unwrap();
        s.set_prompt_ids(vec![3, 500, 17, 940, 2]).unwrap();
        let greedy = s.generate(4, &SamplingParams { temperature: 0.0, ..Default::default() }).unwrap();
        (s.current_logits().unwrap().to_vec(), greedy, s.routing.len())
    };
    let ((a, ga, routed), (b, gb, _)) = (run(&moe_dir), run(&dense_dir));
    assert_eq!(routed, 9, "routing recorded for every position");
    let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    assert!(worst < 1e-5, "MoE with identical experts vs the dense twin: {worst}");
    assert_eq!(ga, gb);
}
