//! A GGUF file seen the way transformers sees it after `from_pretrained(dir, gguf_file=…)`:
//! the `{arch}.*` keys become a `config.json`, the tensors get Hugging Face names, merged
//! expert tensors are split per expert, and llama.cpp's q/k row permutation is undone.
//!
//! The key and name mappings follow transformers' `integrations/ggml.py`
//! (`GGUF_CONFIG_MAPPING`) and gguf-py's `tensor_mapping.py`; the permutation follows
//! `modeling_gguf_pytorch_utils.py` (`LlamaConverter`, `reverse_permute_weights`).

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json, json};

use crate::checkpoint::ggml_dtype::GgmlLayout;
use crate::checkpoint::gguf::MAGIC;
use crate::checkpoint::gguf::{GgufEntry, GgufFile, GgufTensor, Value};
use crate::checkpoint::quant::GgmlType;
use crate::checkpoint::{Checkpoint, CheckpointError, Dtype, TensorInfo};

/// The `config.json` transformers would build from the file's keys; None when the file
/// names no architecture.
pub fn hf_config(file: &GgufFile) -> Result<Json, String> {
    let arch = file.architecture().ok_or("has no `general.architecture` key")?.to_string();
    let key = |k: &str| file.get(&format!("{arch}.{k}"));
    let mut c = Map::new();
    let model_type = model_type(file, &arch);
    c.insert("model_type".into(), json!(model_type));
    if let Some(f) = crate::arch::Family::from_model_type(&model_type) {
        c.insert("architectures".into(), json!([format!("{}ForCausalLM", f.prefix())]));
    }
    let experts_key = if model_type == "mixtral" { "num_local_experts" } else { "num_experts" };
    let numbers = [
        ("context_length", "max_position_embeddings"),
        ("embedding_length", "hidden_size"),
        ("block_count", "num_hidden_layers"),
        ("feed_forward_length", "intermediate_size"),
        ("attention.head_count", "num_attention_heads"),
        ("attention.head_count_kv", "num_key_value_heads"),
        ("attention.layer_norm_rms_epsilon", "rms_norm_eps"),
        ("rope.freq_base", "rope_theta"),
        // transformers maps `key_length` for qwen3_moe only (and falls back to the config
        // class's default head_dim elsewhere); reading it for every family gives the stored
        // shapes in the cases where that default would not.
        ("attention.key_length", "head_dim"),
        ("expert_count", experts_key),
        ("expert_used_count", "num_experts_per_tok"),
        ("expert_feed_forward_length", "moe_intermediate_size"),
        ("expert_shared_feed_forward_length", "shared_expert_intermediate_size"),
        ("vocab_size", "vocab_size"),
    ];
    for (from, to) in numbers {
        if let Some(v) = key(from) {
            let n = scalar(v).ok_or_else(|| format!("`{arch}.{from}` is {v:?}, expected a number"))?;
            c.insert(to.into(), n);
        }
    }
    if matches!(model_type.as_str(), "llama" | "mistral" | "mixtral")
        && let Some(n) = key("rope.dimension_count").and_then(scalar)
    {
        c.entry("head_dim").or_insert(n);
    }
    if model_type == "qwen3_moe" {
        // transformers' GGUF_CONFIG_DEFAULTS_MAPPING: llama.cpp normalises the top-k weights.
        c.insert("norm_topk_prob".into(), json!(true));
    }
    if !c.contains_key("vocab_size") {
        let tokens = file.get("tokenizer.ggml.tokens").and_then(Value::as_array).map(|a| a.values.len());
        let embd = file.tensors.iter().find(|t| t.name == "token_embd.weight").and_then(|t| t.dims.get(1).copied());
        if let Some(n) = tokens.map(|n| n as u64).or(embd) {
            c.insert("vocab_size".into(), json!(n));
        }
    }
    if let (Some(kind), Some(factor)) = (key("rope.scaling.type").and_then(Value::as_str), key("rope.scaling.factor"))
        && kind != "none"
    {
        let mut s = json!({"rope_type": kind, "factor": scalar(factor)});
        if let Some(orig) = key("rope.scaling.original_context_length").and_then(scalar) {
            s["original_max_position_embeddings"] = orig;
        }
        c.insert("rope_scaling".into(), s);
    }
    for (from, to) in [
        ("bos_token_id", "bos_token_id"),
        ("eos_token_id", "eos_token_id"),
        ("padding_token_id", "pad_token_id"),
        ("unknown_token_id", "unk_token_id"),
    ] {
        if let Some(v) = file.get(&format!("tokenizer.ggml.{from}")).and_then(scalar) {
            c.insert(to.into(), v);
        }
    }
    // GGUF has no key for projection biases; transformers would fall back to the config
    // class's default and drop stored biases, so they are read from the tensors instead.
    let has = |suffix: &str| file.tensors.iter().any(|t| t.name.starts_with("blk.") && t.name.ends_with(suffix));
    if has(".attn_output.bias") || (has(".attn_q.bias") && !model_type.starts_with("qwen2")) {
        c.insert("attention_bias".into(), json!(true));
    }
    if has(".ffn_up.bias") {
        c.insert("mlp_bias".into(), json!(true));
    }
    let has_output = file.tensors.iter().any(|t| t.name == "output.weight");
    c.insert("tie_word_embeddings".into(), json!(!has_output));
    Ok(Json::Object(c))
}

/// transformers' renaming of llama.cpp architectures; a llama-arch file with experts is
/// Mixtral, and one named Mistral is Mistral (the same patch transformers applies).
fn model_type(file: &GgufFile, arch: &str) -> String {
    let name = file.get("general.name").and_then(Value::as_str).unwrap_or("").to_lowercase();
    let experts = file.get(&format!("{arch}.expert_count")).and_then(Value::as_u64).unwrap_or(0);
    match arch {
        "llama" if experts > 0 => "mixtral".into(),
        "llama" if name.contains("mistral") => "mistral".into(),
        "qwen2moe" => "qwen2_moe".into(),
        "qwen3moe" => "qwen3_moe".into(),
        other => other.into(),
    }
}

/// A numeric metadata value as JSON (arrays: the first element, as for per-layer
/// `head_count_kv` lists whose entries agree).
fn scalar(v: &Value) -> Option<Json> {
    match v {
        Value::F32(x) => Some(json!(*x as f64)),
        Value::F64(x) => Some(json!(x)),
        Value::Array(a) => a.values.first().and_then(scalar),
        other => other.as_u64().map(|n| json!(n)).or_else(|| other.as_f64().map(|x| json!(x))),
    }
}

/// One Hugging Face tensor backed by (part of) one GGUF tensor.
pub type Mapped = (TensorInfo, GgufEntry);

/// The Hugging Face name of a per-layer GGUF tensor suffix (`attn_q.weight` → `self_attn.q_proj.weight`).
fn layer_name(rest: &str, mixtral: bool) -> Option<String> {
    let (base, kind) = rest.rsplit_once('.')?;
    let moe = if mixtral { "block_sparse_moe" } else { "mlp" };
    let hf = match base {
        "attn_norm" => "input_layernorm".to_string(),
        "attn_q" => "self_attn.q_proj".into(),
        "attn_k" => "self_attn.k_proj".into(),
        "attn_v" => "self_attn.v_proj".into(),
        "attn_output" => "self_attn.o_proj".into(),
        "attn_q_norm" => "self_attn.q_norm".into(),
        "attn_k_norm" => "self_attn.k_norm".into(),
        "ffn_norm" => "post_attention_layernorm".into(),
        "ffn_gate" => "mlp.gate_proj".into(),
        "ffn_up" => "mlp.up_proj".into(),
        "ffn_down" => "mlp.down_proj".into(),
        "ffn_gate_inp" => format!("{moe}.gate"),
        "ffn_gate_inp_shexp" => "mlp.shared_expert_gate".into(),
        "ffn_gate_shexp" => "mlp.shared_expert.gate_proj".into(),
        "ffn_up_shexp" => "mlp.shared_expert.up_proj".into(),
        "ffn_down_shexp" => "mlp.shared_expert.down_proj".into(),
        // Older Mixtral files store one tensor per expert: `ffn_gate.3.weight`.
        _ => {
            let (proj, e) = base.rsplit_once('.')?;
            let e: usize = e.parse().ok()?;
            return Some(format!("{}.{kind}", expert_name(proj, e, mixtral)?));
        }
    };
    Some(format!("{hf}.{kind}"))
}

/// `ffn_gate_exps` / `ffn_gate` of expert `e` → `mlp.experts.e.gate_proj` (Mixtral: `w1`).
fn expert_name(proj: &str, e: usize, mixtral: bool) -> Option<String> {
    let proj = proj.trim_end_matches("_exps");
    Some(match (proj, mixtral) {
        ("ffn_gate", true) => format!("block_sparse_moe.experts.{e}.w1"),
        ("ffn_down", true) => format!("block_sparse_moe.experts.{e}.w2"),
        ("ffn_up", true) => format!("block_sparse_moe.experts.{e}.w3"),
        ("ffn_gate", false) => format!("mlp.experts.{e}.gate_proj"),
        ("ffn_up", false) => format!("mlp.experts.{e}.up_proj"),
        ("ffn_down", false) => format!("mlp.experts.{e}.down_proj"),
        _ => return None,
    })
}

/// The Hugging Face name of a GGUF tensor, or None when there is no known one (the tensor
/// then keeps its GGUF name).
pub fn hf_name(gguf: &str, model_type: &str) -> Option<String> {
    let mixtral = model_type == "mixtral";
    match gguf {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    Some(format!("model.layers.{layer}.{}", layer_name(rest, mixtral)?))
}

/// The tensor table with Hugging Face names, shapes and row order. `config` is the one
/// [`hf_config`] built (its head counts say how to undo the q/k permutation).
pub fn map_tensors(file: &GgufFile, config: &Json) -> Vec<Mapped> {
    let model_type = config.get("model_type").and_then(Json::as_str).unwrap_or("");
    let permuted_family = matches!(model_type, "llama" | "mistral" | "mixtral");
    let heads = |k: &str| config.get(k).and_then(Json::as_u64).unwrap_or(0) as usize;
    let n_head = heads("num_attention_heads");
    let n_kv = match heads("num_key_value_heads") {
        0 => n_head,
        n => n,
    };
    let mut out = Vec::new();
    for t in &file.tensors {
        if t.name.starts_with("blk.") && t.name.contains("_exps.") && t.dims.len() == 3 {
            let split = split_experts(t, model_type);
            if !split.is_empty() {
                out.extend(split);
                continue;
            }
        }
        let name = hf_name(&t.name, model_type).unwrap_or_else(|| t.name.clone());
        let n = if t.name.contains(".attn_q.") { n_head } else { n_kv };
        let permute = permuted_family && (t.name.contains(".attn_q.") || t.name.contains(".attn_k."));
        let rows = t.dims.get(1).copied().unwrap_or(1) as usize;
        let head_rows = if permute && n > 0 && rows.is_multiple_of(2 * n) { rows / n } else { 0 };
        out.push(mapped(t, name, None, head_rows, t.offset, t.byte_len, t.torch_shape()));
    }
    out
}

fn mapped(
    t: &GgufTensor,
    name: String,
    expert: Option<usize>,
    head_rows: usize,
    offset: u64,
    len: Option<u64>,
    shape: Vec<usize>,
) -> Mapped {
    let row_len = t.dims.first().copied().unwrap_or(1) as u32;
    let layout = GgmlLayout { ty: t.ggml_type, row_len, head_rows: head_rows as u32 };
    let dtype = match (t.ggml_type, head_rows) {
        (GgmlType::F32, 0) => Dtype::F32,
        (GgmlType::F16, 0) => Dtype::F16,
        (GgmlType::BF16, 0) => Dtype::BF16,
        _ => Dtype::Ggml(layout),
    };
    let start = offset as usize;
    let info = TensorInfo { name, dtype, shape, data_offsets: (start, start + len.unwrap_or(0) as usize), shard: 0 };
    (info, GgufEntry { gguf_name: t.name.clone(), ggml_type: t.ggml_type, expert, unpermuted: head_rows > 0 })
}

/// A merged `[n_expert, rows, cols]` tensor as one 2-D tensor per expert (each expert's
/// bytes are contiguous), as transformers splits it on load.
fn split_experts(t: &GgufTensor, model_type: &str) -> Vec<Mapped> {
    let n = t.dims[2] as usize;
    let per = t.byte_len.map(|b| b / n.max(1) as u64);
    let parts: Vec<&str> = t.name.split('.').collect();
    let [_, layer, proj, "weight"] = parts[..] else { return Vec::new() };
    let layer_prefix = format!("model.layers.{layer}");
    let shape = vec![t.dims[1] as usize, t.dims[0] as usize];
    (0..n)
        .filter_map(|e| {
            let name = format!("{layer_prefix}.{}.weight", expert_name(proj, e, model_type == "mixtral")?);
            let offset = t.offset + per.unwrap_or(0) * e as u64;
            Some(mapped(t, name, Some(e), 0, offset, per, shape.clone()))
        })
        .collect()
}

/// The GGUF file `path` names: the path itself when it is a GGUF file (by extension or magic),
/// the one `*.gguf` in a folder that holds no safetensors, or None (not a GGUF). A folder with
/// several is an error that lists them, so the user can pick one.
pub fn find_gguf(path: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    if path.is_file() {
        let named = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
        let mut magic = [0u8; 4];
        let has_magic = std::fs::File::open(path).and_then(|mut f| f.read_exact(&mut magic)).is_ok() && &magic == MAGIC;
        return Ok((named || has_magic).then(|| path.to_path_buf()));
    }
    let is_gguf = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf"));
    crate::checkpoint::single_model_file(path, "GGUF", is_gguf, &["safetensors"])
}

/// Opens a GGUF file as a checkpoint: header only, tensors under Hugging Face names, the
/// config transformers would build.
pub fn open_checkpoint(path: &Path) -> Result<Checkpoint, CheckpointError> {
    let file = GgufFile::open(path)?;
    let bad = |what: String| CheckpointError::BadGguf { file: path.to_path_buf(), what };
    let config = hf_config(&file).map_err(bad)?;
    let mapped = map_tensors(&file, &config);
    Checkpoint::from_gguf(file, config, mapped)
}
