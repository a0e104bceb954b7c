//! MiniMind (github jingyaogong/minimind), the family the course's LoRA walk-through is
//! built on, in its two generations:
//!
//! - **MiniMindLM** (v1): `torch.save(model.state_dict())` to a `.pth` with MiniMind's own
//!   names (`tok_embeddings`, `layers.N.attention.wq`, `feed_forward.w1`, `output`) and no
//!   config. The config is inferred from the shapes, with `LMConfig`'s defaults for what
//!   shapes cannot tell (n_heads 8, θ 1e6, eps 1e-5, top-2 routing), overridden by an
//!   `lmconfig.json` of LMConfig fields beside the file; every value says where it came from
//!   (the Inspector lists them). Its RoPE rotates interleaved pairs.
//! - **MiniMindForCausalLM** (v2): a Hugging Face-style folder (`model_type: "minimind"`)
//!   whose tensors carry Hugging Face names; its `auto_map` Python is never run.
//!
//! Both print MiniMind's own `str(model)`, not a transformers family's. The engine names
//! tensors as Hugging Face Llama does; [`stored_name`] and [`engine_name`] translate for v1.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use super::config::{ArchConfig, Family};
use super::module::{ModuleTree, ROOT, py_float};
use crate::checkpoint::{Checkpoint, CheckpointError, TensorInfo};

/// The LMConfig fields a sidecar may set, read beside the `.pth`.
pub const LMCONFIG_FILE: &str = "lmconfig.json";

/// The model `.pth` that `path` names: the file itself, or the one `.pth` in a folder that
/// has no config.json or safetensors (LoRA files live in `lora/` and are adapters).
pub fn find_pth(path: &Path) -> Result<Option<PathBuf>, CheckpointError> {
    let is_pth =
        |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("pth") || e.eq_ignore_ascii_case("pt"));
    if path.is_file() {
        return Ok(is_pth(path).then(|| path.to_path_buf()));
    }
    crate::checkpoint::single_model_file(path, ".pth", is_pth, &["safetensors", "gguf"])
}

/// A `.pth` state dict as a one-file checkpoint under its stored names, with the config
/// inferred for it. Reads the pickle (through the restricted reader) and no weight byte.
pub fn open_checkpoint(path: &Path) -> Result<(Checkpoint, Vec<String>), CheckpointError> {
    let mut shard = crate::checkpoint::torch_shard(path, 0)?;
    // Non-persistent buffers older MiniMind checkpoints still carry (eval_model.py drops them).
    shard.tensors.retain(|t| !t.name.ends_with(".mask") && !t.name.contains("pos_cis"));
    let infos = shard.tensors.clone();
    let shape = |name: &str| infos.iter().find(|t| t.name == name).map(|t| t.shape.clone());
    let bad = |what: String| CheckpointError::BadFolder { folder: path.to_path_buf(), what };
    let (config, assumed) = if shape("tok_embeddings.weight").is_some() {
        v1_config(path, &infos, &shape).map_err(bad)?
    } else if shape("model.embed_tokens.weight").is_some() && shape("model.layers.0.self_attn.q_norm.weight").is_some()
    {
        v2_config(&infos, &shape).map_err(bad)?
    } else {
        return Err(bad(format!(
            "is a torch state dict of {} tensors, but not a MiniMind model (no tok_embeddings.weight, as MiniMindLM stores, or model.embed_tokens.weight with q_norm, as MiniMindForCausalLM does); a LoRA .pth is opened with File ▸ Attach LoRA",
            infos.len()
        )));
    };
    let ckpt = Checkpoint::from_single_file(path, shard, config)?;
    Ok((ckpt, assumed))
}

type ShapeOf<'a> = dyn Fn(&str) -> Option<Vec<usize>> + 'a;

fn layers_stored(infos: &[TensorInfo], marker: &str) -> usize {
    infos
        .iter()
        .filter_map(|t| t.name.strip_prefix(marker)?.split('.').next()?.parse::<usize>().ok())
        .max()
        .map_or(0, |m| m + 1)
}

/// The sidecar's path and its LMConfig fields.
type LmConfigFields = (PathBuf, serde_json::Map<String, Value>);

/// The LMConfig fields of `lmconfig.json` beside the file (bare, or under an `lmconfig` key as
/// the course fixtures write it).
fn read_lmconfig(pth: &Path) -> Result<Option<LmConfigFields>, String> {
    let file = pth.with_file_name(LMCONFIG_FILE);
    if !file.is_file() {
        return Ok(None);
    }
    let text = crate::checkpoint::side_file::read_text(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("{}: not valid JSON: {e}", file.display()))?;
    let fields = v.get("lmconfig").unwrap_or(&v).as_object().cloned();
    fields
        .map(|f| Some((file.clone(), f)))
        .ok_or_else(|| format!("{}: expected a JSON object of LMConfig fields", file.display()))
}

/// MiniMindLM's config from its tensors, LMConfig's defaults and `lmconfig.json`; also the
/// sentences saying where each value came from.
fn v1_config(path: &Path, infos: &[TensorInfo], shape: &ShapeOf) -> Result<(Value, Vec<String>), String> {
    let side = read_lmconfig(path)?;
    let field = |k: &str| side.as_ref().and_then(|(_, f)| f.get(k)).filter(|v| !v.is_null());
    let side_name = side.as_ref().map(|(p, _)| p.file_name().unwrap_or_default().to_string_lossy().into_owned());
    let emb = shape("tok_embeddings.weight").unwrap_or_default();
    let [vocab, dim] = emb[..] else { return Err("tok_embeddings.weight is not 2-D".into()) };
    let n_layers = layers_stored(infos, "layers.");
    if n_layers == 0 {
        return Err("holds tok_embeddings.weight but no layers.N.* tensors".into());
    }
    let mut told = vec![format!(
        "MiniMind .pth files carry no config. From the tensor shapes: dim {dim} and vocab_size {vocab} (tok_embeddings.weight), n_layers {n_layers} (layers.N.*)"
    )];
    let (mut assumed, mut from_side) = (Vec::new(), Vec::new());
    let mut pick = |key: &str, default: Value, why: &str| -> Value {
        match field(key) {
            Some(v) => {
                from_side.push(format!("{key} {v} ({})", side_name.as_deref().unwrap_or(LMCONFIG_FILE)));
                v.clone()
            }
            None => {
                assumed.push(format!("{key} {default}{why}"));
                default
            }
        }
    };
    let n_heads = pick("n_heads", json!(8), " (cannot be read from shapes: wq is dim × dim whatever the head count)")
        .as_u64()
        .unwrap_or(8) as usize;
    if n_heads == 0 || !dim.is_multiple_of(n_heads) {
        return Err(format!(
            "n_heads {n_heads} does not divide dim {dim}; set n_heads in {LMCONFIG_FILE} beside the file"
        ));
    }
    let head_dim = dim / n_heads;
    let kv_rows = shape("layers.0.attention.wk.weight").map_or(dim, |s| s[0]);
    let n_kv_heads = kv_rows / head_dim;
    let norm_eps = pick("norm_eps", json!(1e-5), "").as_f64().unwrap_or(1e-5);
    let rope_theta = pick("rope_theta", json!(1e6), "").as_f64().unwrap_or(1e6);
    let dropout = field("dropout").and_then(Value::as_f64).unwrap_or(0.0);
    let moe = shape("layers.0.feed_forward.gate.weight");
    let ffn =
        if moe.is_some() { "layers.0.feed_forward.experts.0.w1.weight" } else { "layers.0.feed_forward.w1.weight" };
    let hidden_dim = shape(ffn).map_or(0, |s| s[0]);
    told.push(format!("n_kv_heads {n_kv_heads} (wk rows / head_dim), hidden_dim {hidden_dim} ({ffn})"));
    let mut config = json!({
        "architectures": ["MiniMindLM"],
        "model_type": Family::MiniMindLm.model_type(),
        "vocab_size": vocab,
        "hidden_size": dim,
        "intermediate_size": hidden_dim,
        "num_hidden_layers": n_layers,
        "num_attention_heads": n_heads,
        "num_key_value_heads": n_kv_heads,
        "head_dim": head_dim,
        "rms_norm_eps": norm_eps,
        "rope_theta": rope_theta,
        "max_position_embeddings": 32 * 1024,
        "tie_word_embeddings": true,
        "hidden_act": "silu",
        "dropout": dropout,
    });
    if let Some(gate) = moe {
        let experts = gate[0];
        let top_k = pick("num_experts_per_tok", json!(2), "").as_u64().unwrap_or(2);
        let norm_topk = pick("norm_topk_prob", json!(true), "").as_bool().unwrap_or(true);
        let shared = infos.iter().any(|t| t.name.starts_with("layers.0.feed_forward.shared_experts."));
        told.push(format!(
            "MoE: {experts} routed experts (feed_forward.gate.weight rows){}",
            if shared { ", a shared expert (feed_forward.shared_experts.*)" } else { "" }
        ));
        let c = config.as_object_mut().expect("object");
        c.insert("use_moe".into(), json!(true));
        c.insert("num_experts".into(), json!(experts));
        c.insert("num_experts_per_tok".into(), json!(top_k));
        c.insert("norm_topk_prob".into(), json!(norm_topk));
        c.insert("shared_experts".into(), json!(shared));
    }
    told.append(&mut from_side);
    let mut notes = vec![format!("{}.", told.join("; "))];
    if !assumed.is_empty() {
        notes.push(format!(
            "Assumed from MiniMind's LMConfig defaults (put the right values in {LMCONFIG_FILE} beside the file if they differ): {}.",
            assumed.join("; ")
        ));
    }
    Ok((config, notes))
}

/// A current-MiniMind `.pth` (the trainers' `torch.save({k: v.half()})`, Hugging Face names):
/// everything but eps and θ can be read from the shapes, q_norm giving the head size.
fn v2_config(infos: &[TensorInfo], shape: &ShapeOf) -> Result<(Value, Vec<String>), String> {
    let emb = shape("model.embed_tokens.weight").unwrap_or_default();
    let [vocab, hidden] = emb[..] else { return Err("model.embed_tokens.weight is not 2-D".into()) };
    let head_dim = shape("model.layers.0.self_attn.q_norm.weight").map_or(0, |s| s[0]).max(1);
    let heads = shape("model.layers.0.self_attn.q_proj.weight").map_or(0, |s| s[0]) / head_dim;
    let kv = shape("model.layers.0.self_attn.k_proj.weight").map_or(0, |s| s[0]) / head_dim;
    let gate = shape("model.layers.0.mlp.gate.weight");
    let ffn = if gate.is_some() {
        "model.layers.0.mlp.experts.0.gate_proj.weight"
    } else {
        "model.layers.0.mlp.gate_proj.weight"
    };
    let inter = shape(ffn).map_or(0, |s| s[0]);
    let mut config = json!({
        "architectures": ["MiniMindForCausalLM"],
        "model_type": "minimind",
        "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": inter,
        "num_hidden_layers": layers_stored(infos, "model.layers."),
        "num_attention_heads": heads, "num_key_value_heads": kv, "head_dim": head_dim,
        "tie_word_embeddings": true,
    });
    if let Some(g) = gate {
        let c = config.as_object_mut().expect("object");
        c.insert("use_moe".into(), json!(true));
        c.insert("num_experts".into(), json!(g[0]));
        c.insert("moe_intermediate_size".into(), json!(inter));
    }
    Ok((
        config,
        vec![format!(
            "A MiniMind trainer .pth carries no config: sizes from the tensor shapes (head_dim {head_dim} from q_norm, {heads} heads, {kv} KV heads, FFN {inter}); rms_norm_eps 1e-6, rope_theta 1e6 and top-1 routing are MiniMindConfig's defaults."
        )],
    ))
}

/// v1's stored name of a tensor or module the engine names as Hugging Face Llama does
/// (`model.layers.0.self_attn.q_proj.weight` → `layers.0.attention.wq.weight`).
pub fn stored_name(hf: &str) -> String {
    translate(hf, false)
}

/// The inverse: the engine's name of a v1 module path (LoRA files name v1 modules).
pub fn engine_name(stored: &str) -> String {
    translate(stored, true)
}

/// Hugging Face component ↔ MiniMindLM component, one to one.
const COMPONENTS: [(&str, &str); 12] = [
    ("self_attn", "attention"),
    ("q_proj", "wq"),
    ("k_proj", "wk"),
    ("v_proj", "wv"),
    ("o_proj", "wo"),
    ("input_layernorm", "attention_norm"),
    ("post_attention_layernorm", "ffn_norm"),
    ("mlp", "feed_forward"),
    ("shared_expert", "shared_experts"),
    ("gate_proj", "w1"),
    ("up_proj", "w3"),
    ("down_proj", "w2"),
];
const TOP: [(&str, &str); 3] =
    [("model.embed_tokens", "tok_embeddings"), ("model.norm", "norm"), ("lm_head", "output")];

fn translate(name: &str, to_hf: bool) -> String {
    let swap = |(hf, v1): (&'static str, &'static str)| if to_hf { (v1, hf) } else { (hf, v1) };
    for pair in TOP {
        let (from, to) = swap(pair);
        if let Some(rest) = name.strip_prefix(from)
            && (rest.is_empty() || rest.starts_with('.'))
        {
            return format!("{to}{rest}");
        }
    }
    let (from, to) = swap(("model.layers.", "layers."));
    let Some(rest) = name.strip_prefix(from) else { return name.to_string() };
    let parts: Vec<&str> = rest
        .split('.')
        .map(|c| COMPONENTS.iter().map(|&p| swap(p)).find(|(f, _)| *f == c).map_or(c, |(_, t)| t))
        .collect();
    format!("{to}{}", parts.join("."))
}

fn dropout(t: &mut ModuleTree, parent: usize, key: &str, p: f64) {
    t.add(parent, key, "Dropout", format!("p={}, inplace=False", py_float(p)));
}

/// MiniMind's `RMSNorm` has no extra_repr: it prints `RMSNorm()`.
fn rms_norm(t: &mut ModuleTree, parent: usize, key: &str, dim: usize) {
    let id = t.add(parent, key, "RMSNorm", String::new());
    t.add_param(id, "weight", vec![dim]);
}

/// `str(MiniMindLM(LMConfig(…)))` at commit 7da201a.
pub fn v1_tree(cfg: &ArchConfig, dropout_p: f64) -> ModuleTree {
    let (h, q_out, kv_out) = (cfg.hidden_size, cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim);
    let mut t = ModuleTree::new("MiniMindLM");
    t.embedding(ROOT, "tok_embeddings", cfg.vocab_size, h, None);
    dropout(&mut t, ROOT, "dropout", dropout_p);
    let layers = t.add_list(ROOT, "layers");
    let feed_forward = |t: &mut ModuleTree, parent: usize, key: &str| {
        let ff = t.add(parent, key, "FeedForward", String::new());
        t.linear(ff, "w1", h, cfg.intermediate_size, false);
        t.linear(ff, "w2", cfg.intermediate_size, h, false);
        t.linear(ff, "w3", h, cfg.intermediate_size, false);
        dropout(t, ff, "dropout", dropout_p);
    };
    for i in 0..cfg.num_layers {
        let block = t.add(layers, &i.to_string(), "MiniMindBlock", String::new());
        let attn = t.add(block, "attention", "Attention", String::new());
        t.linear(attn, "wq", h, q_out, false);
        t.linear(attn, "wk", h, kv_out, false);
        t.linear(attn, "wv", h, kv_out, false);
        t.linear(attn, "wo", q_out, h, false);
        dropout(&mut t, attn, "attn_dropout", dropout_p);
        dropout(&mut t, attn, "resid_dropout", dropout_p);
        rms_norm(&mut t, block, "attention_norm", h);
        rms_norm(&mut t, block, "ffn_norm", h);
        match &cfg.moe {
            None => feed_forward(&mut t, block, "feed_forward"),
            Some(moe) => {
                let ff = t.add(block, "feed_forward", "MOEFeedForward", String::new());
                let experts = t.add_list(ff, "experts");
                for e in 0..moe.num_experts {
                    feed_forward(&mut t, experts, &e.to_string());
                }
                let gate = t.add(ff, "gate", "MoEGate", String::new());
                t.add_param(gate, "weight", vec![moe.num_experts, h]);
                if moe.shared_expert_intermediate.is_some() {
                    feed_forward(&mut t, ff, "shared_experts");
                }
            }
        }
    }
    rms_norm(&mut t, ROOT, "norm", h);
    let output = t.linear(ROOT, "output", h, cfg.vocab_size, false);
    // `self.tok_embeddings.weight = self.output.weight`: one parameter, both keys stored.
    t.tie(output, "weight", "tok_embeddings.weight");
    t
}

/// `str(MiniMindForCausalLM(MiniMindConfig(…)))` at commit d65ef2c.
pub fn v2_tree(cfg: &ArchConfig, dropout_p: f64) -> ModuleTree {
    let (h, q_out, kv_out) = (cfg.hidden_size, cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim);
    let act = super::families::activation_class(&cfg.hidden_act);
    let mut t = ModuleTree::new("MiniMindForCausalLM");
    let model = t.add(ROOT, "model", "MiniMindModel", String::new());
    t.embedding(model, "embed_tokens", cfg.vocab_size, h, None);
    dropout(&mut t, model, "dropout", dropout_p);
    let layers = t.add_list(model, "layers");
    let feed_forward = |t: &mut ModuleTree, parent: usize, key: &str, inter: usize| {
        let ff = t.add(parent, key, "FeedForward", String::new());
        t.linear(ff, "gate_proj", h, inter, false);
        t.linear(ff, "down_proj", inter, h, false);
        t.linear(ff, "up_proj", h, inter, false);
        t.leaf(ff, "act_fn", act);
    };
    for i in 0..cfg.num_layers {
        let block = t.add(layers, &i.to_string(), "MiniMindBlock", String::new());
        let attn = t.add(block, "self_attn", "Attention", String::new());
        t.linear(attn, "q_proj", h, q_out, false);
        t.linear(attn, "k_proj", h, kv_out, false);
        t.linear(attn, "v_proj", h, kv_out, false);
        t.linear(attn, "o_proj", q_out, h, false);
        rms_norm(&mut t, attn, "q_norm", cfg.head_dim);
        rms_norm(&mut t, attn, "k_norm", cfg.head_dim);
        dropout(&mut t, attn, "attn_dropout", dropout_p);
        dropout(&mut t, attn, "resid_dropout", dropout_p);
        rms_norm(&mut t, block, "input_layernorm", h);
        rms_norm(&mut t, block, "post_attention_layernorm", h);
        match &cfg.moe {
            None => feed_forward(&mut t, block, "mlp", cfg.intermediate_size),
            Some(moe) => {
                let ff = t.add(block, "mlp", "MOEFeedForward", String::new());
                t.linear(ff, "gate", h, moe.num_experts, false);
                let experts = t.add_list(ff, "experts");
                for e in 0..moe.num_experts {
                    feed_forward(&mut t, experts, &e.to_string(), moe.expert_intermediate);
                }
                t.leaf(ff, "act_fn", act);
            }
        }
    }
    rms_norm(&mut t, model, "norm", h);
    let lm_head = t.linear(ROOT, "lm_head", h, cfg.vocab_size, false);
    if cfg.tie_word_embeddings {
        t.tie(lm_head, "weight", "model.embed_tokens.weight");
    }
    t
}

/// What a MiniMind v2 folder's `auto_map` means here, said beside its tree.
pub const AUTO_MAP_NOTICE: &str = "config.json's auto_map points at MiniMind's own Python (model_minimind.py). \
     This program never runs it: it reads the weights and computes MiniMind's arithmetic itself.";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_translate_both_ways() {
        for (hf, v1) in [
            ("model.embed_tokens.weight", "tok_embeddings.weight"),
            ("model.layers.3.self_attn.q_proj.weight", "layers.3.attention.wq.weight"),
            ("model.layers.0.post_attention_layernorm.weight", "layers.0.ffn_norm.weight"),
            ("model.layers.1.mlp.experts.2.up_proj.weight", "layers.1.feed_forward.experts.2.w3.weight"),
            ("model.layers.1.mlp.shared_expert.down_proj.weight", "layers.1.feed_forward.shared_experts.w2.weight"),
            ("model.layers.1.mlp.gate.weight", "layers.1.feed_forward.gate.weight"),
            ("model.norm.weight", "norm.weight"),
            ("lm_head", "output"),
        ] {
            assert_eq!(stored_name(hf), v1);
            assert_eq!(engine_name(v1), hf);
        }
    }
}
