//! Sparse real-size checkpoints: 8B- and 405B-shaped Llama folders whose shards hold a real
//! header and no data, for the tests and benches that must never read (or write) weights.

use std::fs;
use std::path::Path;

pub struct Shape {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub intermediate: usize,
    pub vocab: usize,
    pub max_positions: usize,
    pub shards: usize,
}

pub const LLAMA3_8B: Shape = Shape {
    hidden: 4096,
    layers: 32,
    heads: 32,
    kv_heads: 8,
    intermediate: 14336,
    vocab: 128256,
    max_positions: 8192,
    shards: 4,
};

pub const LLAMA31_405B: Shape = Shape {
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
/// are a safetensors header (as the official writer pads it) followed by a hole of the right
/// length. Returns the bytes of weights the shards claim.
pub fn write_sparse_llama(folder: &Path, s: &Shape) -> u64 {
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
    let mut total = 0u64;
    for (i, group) in tensors.chunks(per_shard).enumerate() {
        let file = format!("model-{:05}-of-{:05}.safetensors", i + 1, s.shards);
        let mut header = serde_json::Map::new();
        header.insert("__metadata__".into(), serde_json::json!({"format": "pt"}));
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
        total += offset as u64;
    }
    let index = serde_json::json!({"metadata": {"total_size": total}, "weight_map": weight_map});
    fs::write(folder.join("model.safetensors.index.json"), serde_json::to_string(&index).unwrap()).unwrap();
    total
}
