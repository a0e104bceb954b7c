//! Real-size checkpoints without real-size disks: 8B- and 405B-shaped BF16 folders whose
//! shards are sparse files (a header, then `set_len`; no weight byte is written). Opening
//! them must read no weights, and admission must decide from the shapes alone: an 8B kept
//! 16-bit fits a 24 GB machine, a 405B is refused at once with both numbers. Nothing here
//! ever loads the weights of these folders.

use std::fs;
use std::path::Path;

use llm_anatomy::arch::ModelFolder;
use llm_anatomy::engine::Session;
use llm_anatomy::engine::memory::{self, gb};

struct Shape {
    hidden: usize,
    layers: usize,
    heads: usize,
    kv_heads: usize,
    intermediate: usize,
    vocab: usize,
    max_positions: usize,
    shards: usize,
}

const LLAMA3_8B: Shape = Shape {
    hidden: 4096,
    layers: 32,
    heads: 32,
    kv_heads: 8,
    intermediate: 14336,
    vocab: 128256,
    max_positions: 8192,
    shards: 4,
};

const LLAMA31_405B: Shape = Shape {
    hidden: 16384,
    layers: 126,
    heads: 128,
    kv_heads: 8,
    intermediate: 53248,
    vocab: 128256,
    max_positions: 131072,
    shards: 16,
};

/// Writes a Llama folder of `s`'s shapes in BF16: config.json, the index, and shards that
/// are a safetensors header followed by a hole of the right length.
fn write_sparse_llama(folder: &Path, s: &Shape) {
    fs::create_dir_all(folder).unwrap();
    let hd = s.hidden / s.heads;
    let mut config = serde_json::json!({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": s.hidden,
        "intermediate_size": s.intermediate, "num_hidden_layers": s.layers, "num_attention_heads": s.heads,
        "num_key_value_heads": s.kv_heads, "vocab_size": s.vocab, "rms_norm_eps": 1e-5, "rope_theta": 500000.0,
        "max_position_embeddings": s.max_positions, "tie_word_embeddings": false, "torch_dtype": "bfloat16",
        "bos_token_id": 128000, "eos_token_id": 128001
    });
    if s.max_positions > 8192 {
        config["rope_scaling"] = serde_json::json!({
            "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
            "original_max_position_embeddings": 8192
        });
    }
    fs::write(folder.join("config.json"), serde_json::to_string_pretty(&config).unwrap()).unwrap();
    let mut tensors: Vec<(String, Vec<usize>)> = vec![("model.embed_tokens.weight".into(), vec![s.vocab, s.hidden])];
    for i in 0..s.layers {
        let p = format!("model.layers.{i}");
        tensors.push((format!("{p}.input_layernorm.weight"), vec![s.hidden]));
        tensors.push((format!("{p}.post_attention_layernorm.weight"), vec![s.hidden]));
        tensors.push((format!("{p}.self_attn.q_proj.weight"), vec![s.heads * hd, s.hidden]));
        tensors.push((format!("{p}.self_attn.k_proj.weight"), vec![s.kv_heads * hd, s.hidden]));
        tensors.push((format!("{p}.self_attn.v_proj.weight"), vec![s.kv_heads * hd, s.hidden]));
        tensors.push((format!("{p}.self_attn.o_proj.weight"), vec![s.hidden, s.heads * hd]));
        tensors.push((format!("{p}.mlp.gate_proj.weight"), vec![s.intermediate, s.hidden]));
        tensors.push((format!("{p}.mlp.up_proj.weight"), vec![s.intermediate, s.hidden]));
        tensors.push((format!("{p}.mlp.down_proj.weight"), vec![s.hidden, s.intermediate]));
    }
    tensors.push(("model.norm.weight".into(), vec![s.hidden]));
    tensors.push(("lm_head.weight".into(), vec![s.vocab, s.hidden]));
    let per_shard = tensors.len().div_ceil(s.shards);
    let mut weight_map = serde_json::Map::new();
    for (i, group) in tensors.chunks(per_shard).enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, s.shards);
        let mut header = serde_json::Map::new();
        let mut offset = 0usize;
        for (name, shape) in group {
            let bytes = shape.iter().product::<usize>() * 2;
            header.insert(
                name.clone(),
                serde_json::json!({"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + bytes]}),
            );
            weight_map.insert(name.clone(), file.clone().into());
            offset += bytes;
        }
        let mut text = serde_json::to_string(&header).unwrap();
        while !text.len().is_multiple_of(8) {
            text.push(' ');
        }
        let mut head = (text.len() as u64).to_le_bytes().to_vec();
        head.extend_from_slice(text.as_bytes());
        fs::write(folder.join(&file), &head).unwrap();
        let f = fs::OpenOptions::new().write(true).open(folder.join(&file)).unwrap();
        f.set_len((head.len() + offset) as u64).unwrap();
    }
    let index = serde_json::json!({"metadata": {}, "weight_map": weight_map});
    fs::write(folder.join("model.safetensors.index.json"), serde_json::to_string(&index).unwrap()).unwrap();
}

/// A field of /proc/self/<file> ("rchar" of io, "VmRSS" of status) as a number; None
/// off Linux. VmRSS is in kB, rchar in bytes: callers compare like with like.
fn proc_number(file: &str, key: &str) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/self/{file}")).ok()?;
    let line = text.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// A temporary folder to write a 405B into, where the machine's available memory is known;
/// elsewhere nothing would refuse it, and the test is skipped rather than loading 810 GB.
fn folder_for_405b() -> Option<tempfile::TempDir> {
    if memory::available_memory().is_none() {
        println!("skipped: no MemAvailable on this platform, so nothing would refuse the 405B");
        return None;
    }
    Some(tempfile::tempdir().unwrap())
}

#[test]
fn an_8b_kept_16_bit_fits_24_gb_and_not_9_8_gb() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("llama-3-8b-shaped");
    write_sparse_llama(&folder, &LLAMA3_8B);
    let model = ModelFolder::open(&folder).unwrap();
    let cfg = model.config.as_ref().unwrap();
    let params = model.checkpoint.total_params();
    assert_eq!(params, 8_030_261_248, "Llama-3-8B's parameter count");

    let fits = memory::admission(cfg, &model.checkpoint, Some(24_000_000_000)).expect("an 8B in BF16 fits in 24 GB");
    assert_eq!(fits.weights, 2 * params, "BF16 stays 16-bit: two bytes per parameter, no f32 copy");
    assert_eq!(fits.context, 4096);
    // 32 layers × 8 KV heads × 128 × 4,096 positions × (k, v) × 4 bytes.
    assert_eq!(fits.kv_cache, 1 << 30);
    println!("8B estimate: {} (weights {}, KV {})", gb(fits.total()), gb(fits.weights), gb(fits.kv_cache));

    let refusal = memory::admission(cfg, &model.checkpoint, Some(9_800_000_000)).unwrap_err();
    let sentence = refusal.to_string();
    let want = format!("needs {}, 9.8 GB available: this model can be inspected but not run here", gb(fits.total()));
    assert!(sentence.starts_with(&want), "{sentence}");
    assert_eq!(memory::admission(cfg, &model.checkpoint, None), Ok(fits), "no figure for the machine: no refusal");
}

#[test]
fn opening_real_size_folders_reads_no_weights_and_a_405b_is_refused_at_once() {
    let Some(dir) = folder_for_405b() else { return };
    let small = dir.path().join("llama-3-8b-shaped");
    let huge = dir.path().join("llama-3.1-405b-shaped");
    write_sparse_llama(&small, &LLAMA3_8B);
    write_sparse_llama(&huge, &LLAMA31_405B);

    let (rss0, read0) = (proc_number("status", "VmRSS:"), proc_number("io", "rchar:"));
    let t = std::time::Instant::now();
    let eight = ModelFolder::open(&small).unwrap();
    let four05 = ModelFolder::open(&huge).unwrap();
    assert!(four05.checkpoint.total_bytes() > 800_000_000_000);
    let refused = Session::load(&four05).err().expect("a 405B cannot run on a test machine");
    let elapsed = t.elapsed();
    let (rss1, read1) = (proc_number("status", "VmRSS:"), proc_number("io", "rchar:"));

    let want = "GB available: this model can be inspected but not run here";
    assert!(refused.contains("needs 8") && refused.contains(want), "{refused}");
    assert!(elapsed.as_secs_f64() < 5.0, "refused after {elapsed:?}: it must not start reading");
    if let (Some(a), Some(b)) = (rss0, rss1) {
        assert!(b.saturating_sub(a) < 100_000, "RSS grew by {} kB opening 16 GB + 810 GB folders", b - a);
    }
    if let (Some(a), Some(b)) = (read0, read1) {
        // The headers and configs only (the 405B's headers are ~100 kB each).
        assert!(b - a < 20_000_000, "read {} bytes opening the folders", b - a);
    }
    drop(eight);
}

#[test]
fn the_cli_refuses_a_405b_and_exits_non_zero() {
    let Some(dir) = folder_for_405b() else { return };
    let huge = dir.path().join("llama-3.1-405b-shaped");
    write_sparse_llama(&huge, &LLAMA31_405B);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-anatomy"))
        .args(["probs", huge.to_str().unwrap(), "--prompt", "1, 2, 3, 4,"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("can be inspected but not run here"), "{stderr}");
}
