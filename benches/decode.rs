//! `cargo bench --bench decode [-- MODEL_FOLDER]`: prefill and decode tokens/s, and the
//! time to re-run sampling on one step's logits (what a slider move costs).
//!
//! With no folder it writes a random-weight F32 folder with SmolLM2-135M's shapes (hidden
//! 576, 30 layers, 9 heads / 3 KV heads, intermediate 1536, vocab 49152, tied embeddings),
//! so speed can be measured with no download.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::Session;
use llm_anatomy::sampling::{self, SamplingParams};

fn main() {
    let arg = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let _tmp;
    let folder: PathBuf = match arg {
        Some(p) => PathBuf::from(p),
        None => {
            _tmp = tempfile::tempdir().expect("temp dir");
            let f = _tmp.path().join("smollm2-135m-shaped");
            write_smollm2_shaped(&f);
            f
        }
    };
    println!("threads: {}", rayon::current_num_threads());
    let t = Instant::now();
    let model = ModelFolder::open(&folder).expect("open folder");
    let mut session = Session::load(&model).expect("load model");
    println!(
        "load {} ({} parameters): {:.2} s",
        folder.display(),
        model.tree.unique_param_count(0),
        t.elapsed().as_secs_f64()
    );
    let vocab = session.model.cfg.vocab_size as u32;
    let prompt: Vec<u32> = (0..64).map(|i| (i * 7919 + 13) % vocab.min(1000)).collect();
    for _ in 0..2 {
        let t = Instant::now();
        session.set_prompt_ids(prompt.clone()).unwrap();
        let prefill = t.elapsed().as_secs_f64();
        let greedy = SamplingParams { temperature: 0.0, ..Default::default() };
        let n = 32;
        let t = Instant::now();
        llm_anatomy::engine::matvec::MATVEC_NS.store(0, std::sync::atomic::Ordering::Relaxed);
        session.generate(n, &greedy).unwrap();
        let decode = t.elapsed().as_secs_f64();
        println!(
            "  of which matvec: {:.1} ms/token",
            llm_anatomy::engine::matvec::MATVEC_NS.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6 / n as f64
        );
        println!(
            "prefill {} tokens: {:.1} tokens/s   decode {n} tokens: {:.1} tokens/s ({:.1} ms/token)",
            prompt.len(),
            prompt.len() as f64 / prefill,
            n as f64 / decode,
            1e3 * decode / n as f64
        );
    }
    let logits = session.current_logits().unwrap();
    let params =
        SamplingParams { temperature: 0.7, top_k: 50, top_p: 0.9, min_p: 0.05, repetition_penalty: 1.1, seed: 1 };
    let runs = 20;
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(sampling::distribution(&logits, &session.tokens, &params));
    }
    println!(
        "sampling (penalty, T, top-k, top-p, min-p) over {} logits: {:.2} ms (goal ≤ 5 ms)",
        logits.len(),
        1e3 * t.elapsed().as_secs_f64() / runs as f64
    );
}

fn write_smollm2_shaped(folder: &Path) {
    fs::create_dir_all(folder).unwrap();
    let (h, inter, layers, heads, kv, vocab) = (576usize, 1536usize, 30usize, 9usize, 3usize, 49152usize);
    let hd = h / heads;
    fs::write(
        folder.join("config.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
            "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv, "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
            "max_position_embeddings": 8192, "tie_word_embeddings": true, "torch_dtype": "float32",
            "bos_token_id": 1, "eos_token_id": 2
        }))
        .unwrap(),
    )
    .unwrap();
    fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny-llama/tokenizer.json"),
        folder.join("tokenizer.json"),
    )
    .unwrap();
    let mut tensors: Vec<(String, Vec<usize>)> = vec![("model.embed_tokens.weight".into(), vec![vocab, h])];
    for i in 0..layers {
        let p = format!("model.layers.{i}");
        tensors.push((format!("{p}.input_layernorm.weight"), vec![h]));
        tensors.push((format!("{p}.post_attention_layernorm.weight"), vec![h]));
        tensors.push((format!("{p}.self_attn.q_proj.weight"), vec![heads * hd, h]));
        tensors.push((format!("{p}.self_attn.k_proj.weight"), vec![kv * hd, h]));
        tensors.push((format!("{p}.self_attn.v_proj.weight"), vec![kv * hd, h]));
        tensors.push((format!("{p}.self_attn.o_proj.weight"), vec![h, heads * hd]));
        tensors.push((format!("{p}.mlp.gate_proj.weight"), vec![inter, h]));
        tensors.push((format!("{p}.mlp.up_proj.weight"), vec![inter, h]));
        tensors.push((format!("{p}.mlp.down_proj.weight"), vec![h, inter]));
    }
    tensors.push(("model.norm.weight".into(), vec![h]));
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in &tensors {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let text = serde_json::to_string(&header).unwrap();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out.reserve(offset);
    let mut state = 0x2545F4914F6CDD1Du64;
    for (name, shape) in &tensors {
        let n: usize = shape.iter().product();
        let is_norm = shape.len() == 1;
        let std = if is_norm { 0.0 } else { 0.02 };
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let v = if is_norm { 1.0 } else { u * std * 3.4 };
            out.extend_from_slice(&v.to_le_bytes());
        }
        let _ = name;
    }
    fs::write(folder.join("model.safetensors"), out).unwrap();
}
