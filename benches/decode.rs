//! `cargo bench --bench decode [-- MODEL_FOLDER…]`: decode and prefill tokens/s, peak
//! resident memory, and the time to re-run sampling on one step's logits (a slider move).
//!
//! With no folder it writes random-weight F32 and BF16 folders with SmolLM2-135M's shapes
//! (hidden 576, 30 layers, 9 heads / 3 KV heads, intermediate 1536, vocab 49152, tied
//! embeddings), so speed can be measured with no download, and adds the real SmolLM2 folders
//! and the wheel's Q4_1 GGUF (run as llama.cpp computes it) when `LLM_ANATOMY_SMOLLM2` names
//! the folder `tools/fetch-smollm2.sh` printed. Any folder or `.gguf` can be given instead.
//! llama.cpp's figures for the same files come from `tools/llamacpp-decode.py`, which
//! measures the same way.
//!
//! Decode speed is llama.cpp's measure: tok/s = 63 / (t(64 new) − t(1 new)), both runs from
//! the same 64 prompt ids, greedy, so the prefill cancels out; each the median of 5 runs. Each folder runs in its own
//! child process, so the peak RSS (VmHWM) printed is that model's alone.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::Session;
use llm_anatomy::sampling::{self, SamplingParams};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--one") {
        return run_one(Path::new(&args[i + 1]));
    }
    let mut folders: Vec<PathBuf> = args.iter().filter(|a| !a.starts_with("--")).map(PathBuf::from).collect();
    let _tmp = tempfile::tempdir().expect("temp dir");
    if folders.is_empty() {
        for (name, bf16) in [("smollm2-135m-shaped-f32", false), ("smollm2-135m-shaped-bf16", true)] {
            let f = _tmp.path().join(name);
            write_smollm2_shaped(&f, bf16);
            folders.push(f);
        }
        if let Ok(dir) = std::env::var("LLM_ANATOMY_SMOLLM2") {
            for name in ["smollm2-135m-instruct-f32", "smollm2-135m-instruct", "SmolLM2-135M-Instruct.Q4_1.gguf"] {
                let f = Path::new(&dir).join(name);
                if f.exists() {
                    folders.push(f);
                }
            }
        }
    }
    println!("threads: {}", rayon::current_num_threads());
    for folder in folders {
        let status = std::process::Command::new(std::env::current_exe().expect("own path"))
            .arg("--one")
            .arg(&folder)
            .status()
            .expect("run one folder");
        assert!(status.success(), "{}: {status}", folder.display());
    }
}

fn run_one(folder: &Path) {
    let t = Instant::now();
    let model = ModelFolder::open(folder).expect("open folder");
    let mut session = Session::load(&model).expect("load model");
    let load = t.elapsed().as_secs_f64();
    let weight_bytes = model.checkpoint.total_bytes();
    println!(
        "{} ({} parameters, {:.0} MB stored): load {load:.2} s",
        folder.display(),
        model.tree.unique_param_count(0),
        weight_bytes as f64 / 1e6,
    );
    let cfg = session.model.cfg.clone();
    let vocab = cfg.vocab_size as u32;
    let prompt: Vec<u32> = (0..64).map(|i| (i * 7919 + 13) % vocab.min(1000)).collect();
    let greedy = SamplingParams { temperature: 0.0, ..Default::default() };
    let run = |session: &mut Session, n: usize| {
        let t = Instant::now();
        session.set_prompt_ids(prompt.clone()).unwrap();
        let prefill = t.elapsed().as_secs_f64();
        session.generate(n, &greedy).unwrap();
        (t.elapsed().as_secs_f64(), prefill)
    };
    run(&mut session, 1); // warm-up: pages in the weights
    let (mut t1, mut t64, mut prefill) = (vec![], vec![], vec![]);
    for _ in 0..5 {
        let (t, p) = run(&mut session, 1);
        t1.push(t);
        prefill.push(p);
        t64.push(run(&mut session, 64).0);
    }
    let (t1, t64, prefill) = (median(t1), median(t64), median(prefill));
    let tok_s = 63.0 / (t64 - t1);
    let kv = 2 * cfg.num_layers * cfg.num_kv_heads * cfg.head_dim * (prompt.len() + 64) * 4;
    let peak = peak_rss();
    println!(
        "  decode {tok_s:.1} tok/s ({:.1} ms/token)   prefill {} tokens: {:.1} tok/s   peak RSS {:.0} MB = {:.2} × stored weights (+ KV cache {:.1} MB)",
        1e3 / tok_s,
        prompt.len(),
        prompt.len() as f64 / prefill,
        peak as f64 / 1e6,
        (peak as f64 - kv as f64) / weight_bytes as f64,
        kv as f64 / 1e6
    );
    // The same decode with the Attention / Logit lens probes recording (every layer's
    // attention weights and residual stream per token): what opening those tabs costs.
    session.set_internals(true).unwrap();
    let (mut p1, mut p64) = (vec![], vec![]);
    for _ in 0..5 {
        p1.push(run(&mut session, 1).0);
        p64.push(run(&mut session, 64).0);
    }
    let probed = 63.0 / (median(p64) - median(p1));
    println!("  decode with the internals probes on: {probed:.1} tok/s ({:.2}× the time per token)", tok_s / probed);
    session.set_internals(false).unwrap();
    let logits = session.current_logits().unwrap();
    let params =
        SamplingParams { temperature: 0.7, top_k: 50, top_p: 0.9, min_p: 0.05, repetition_penalty: 1.1, seed: 1 };
    let runs = 20;
    let t = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(sampling::distribution(&logits, &session.tokens, &params));
    }
    println!(
        "  sampling (penalty, T, top-k, top-p, min-p) over {} logits: {:.2} ms (goal ≤ 5 ms)",
        logits.len(),
        1e3 * t.elapsed().as_secs_f64() / runs as f64
    );
}

/// The middle of five timings: one slow run (a page fault, another process) moves it less
/// than a mean, and a lucky one less than a minimum.
fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

/// VmHWM from /proc/self/status, in bytes (0 where there is no such file).
fn peak_rss() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Streams the random weights to disk (no copy of the model in memory, so the bench's own
/// peak RSS is not the writer's).
fn write_smollm2_shaped(folder: &Path, bf16: bool) {
    fs::create_dir_all(folder).unwrap();
    let (h, inter, layers, heads, kv, vocab) = (576usize, 1536usize, 30usize, 9usize, 3usize, 49152usize);
    let hd = h / heads;
    fs::write(
        folder.join("config.json"),
        serde_json::to_string_pretty(&serde_json::json!({
            "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": h,
            "intermediate_size": inter, "num_hidden_layers": layers, "num_attention_heads": heads,
            "num_key_value_heads": kv, "vocab_size": vocab, "rms_norm_eps": 1e-5, "rope_theta": 100000.0,
            "max_position_embeddings": 8192, "tie_word_embeddings": true,
            "torch_dtype": if bf16 { "bfloat16" } else { "float32" },
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
    let size = if bf16 { 2 } else { 4 };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in &tensors {
        let bytes = shape.iter().product::<usize>() * size;
        header.insert(
            name.clone(),
            serde_json::json!({"dtype": if bf16 { "BF16" } else { "F32" }, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    let mut text = serde_json::to_string(&header).unwrap();
    // The official writer pads the header to 8 bytes, which keeps every tensor aligned.
    while !text.len().is_multiple_of(8) {
        text.push(' ');
    }
    let mut out = BufWriter::new(fs::File::create(folder.join("model.safetensors")).unwrap());
    out.write_all(&(text.len() as u64).to_le_bytes()).unwrap();
    out.write_all(text.as_bytes()).unwrap();
    let mut state = 0x2545F4914F6CDD1Du64;
    for (_, shape) in &tensors {
        let n: usize = shape.iter().product();
        let is_norm = shape.len() == 1;
        for _ in 0..n {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let u = (state >> 40) as f32 / (1u64 << 24) as f32 - 0.5;
            let v = if is_norm { 1.0 } else { u * 0.02 * 3.4 };
            if bf16 {
                out.write_all(&half::bf16::from_f32(v).to_le_bytes()).unwrap();
            } else {
                out.write_all(&v.to_le_bytes()).unwrap();
            }
        }
    }
    out.flush().unwrap();
}
