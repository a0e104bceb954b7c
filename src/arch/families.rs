//! The module hierarchy of each supported family, registered in the same order as the
//! `__init__` methods of transformers 4.57's modelling files, so the repr text matches.

use super::config::{ArchConfig, Family};
use super::module::{ModuleTree, ROOT};

/// Builds `XxxForCausalLM` for a parsed config (MiniMind's own classes for its families;
/// `dropout` is the p their Dropout modules print).
pub fn build_tree(cfg: &ArchConfig, dropout: f64) -> ModuleTree {
    match cfg.family {
        Family::MiniMindLm => return super::minimind::v1_tree(cfg, dropout),
        Family::MiniMind => return super::minimind::v2_tree(cfg, dropout),
        _ => {}
    }
    let p = cfg.family.prefix();
    let mut t = ModuleTree::new(&format!("{p}ForCausalLM"));
    let model = t.add(ROOT, "model", &format!("{p}Model"), String::new());
    t.embedding(model, "embed_tokens", cfg.vocab_size, cfg.hidden_size, cfg.pad_token_id);
    let layers = t.add_list(model, "layers");
    for i in 0..cfg.num_layers {
        decoder_layer(&mut t, layers, i, cfg);
    }
    t.rms_norm(model, "norm", &format!("{p}RMSNorm"), cfg.hidden_size, cfg.rms_norm_eps);
    t.leaf(model, "rotary_emb", &format!("{p}RotaryEmbedding"));
    let lm_head = t.linear(ROOT, "lm_head", cfg.hidden_size, cfg.vocab_size, false);
    if cfg.tie_word_embeddings {
        t.tie(lm_head, "weight", "model.embed_tokens.weight");
    }
    t
}

fn decoder_layer(t: &mut ModuleTree, layers: usize, i: usize, cfg: &ArchConfig) {
    let p = cfg.family.prefix();
    let layer = t.add(layers, &i.to_string(), &format!("{p}DecoderLayer"), String::new());
    attention(t, layer, cfg);
    if cfg.is_sparse_layer(i) {
        sparse_moe_block(t, layer, cfg);
    } else {
        mlp(t, layer, "mlp", &format!("{p}MLP"), cfg.hidden_size, cfg.intermediate_size, cfg.mlp_bias, &cfg.hidden_act);
    }
    let norm = format!("{p}RMSNorm");
    t.rms_norm(layer, "input_layernorm", &norm, cfg.hidden_size, cfg.rms_norm_eps);
    t.rms_norm(layer, "post_attention_layernorm", &norm, cfg.hidden_size, cfg.rms_norm_eps);
}

/// transformers 4.57 still instantiates the pre-refactor `*SdpaAttention` classes for
/// Qwen2-MoE (which also owns a rotary embedding of its own) and OLMoE (which does not).
fn attention_class(family: Family) -> (String, bool) {
    let p = family.prefix();
    match family {
        Family::Qwen2Moe => (format!("{p}SdpaAttention"), true),
        Family::Olmoe => (format!("{p}SdpaAttention"), false),
        _ => (format!("{p}Attention"), false),
    }
}

fn attention(t: &mut ModuleTree, layer: usize, cfg: &ArchConfig) {
    let (class, own_rotary) = attention_class(cfg.family);
    let attn = t.add(layer, "self_attn", &class, String::new());
    let h = cfg.hidden_size;
    let q_out = cfg.num_heads * cfg.head_dim;
    let kv_out = cfg.num_kv_heads * cfg.head_dim;
    t.linear(attn, "q_proj", h, q_out, cfg.attention_bias);
    t.linear(attn, "k_proj", h, kv_out, cfg.attention_bias);
    t.linear(attn, "v_proj", h, kv_out, cfg.attention_bias);
    t.linear(attn, "o_proj", q_out, h, cfg.o_proj_bias);
    if cfg.qk_norm {
        let norm = format!("{}RMSNorm", cfg.family.prefix());
        // Qwen3 normalises each head; OLMoE normalises the whole projection.
        let (q_dim, k_dim) = match cfg.family {
            Family::Olmoe => (q_out, kv_out),
            _ => (cfg.head_dim, cfg.head_dim),
        };
        t.rms_norm(attn, "q_norm", &norm, q_dim, cfg.rms_norm_eps);
        t.rms_norm(attn, "k_norm", &norm, k_dim, cfg.rms_norm_eps);
    }
    if own_rotary {
        t.leaf(attn, "rotary_emb", &format!("{}RotaryEmbedding", cfg.family.prefix()));
    }
}

#[allow(clippy::too_many_arguments)]
fn mlp(
    t: &mut ModuleTree,
    parent: usize,
    key: &str,
    class: &str,
    hidden: usize,
    inter: usize,
    bias: bool,
    act: &str,
) -> usize {
    let m = t.add(parent, key, class, String::new());
    t.linear(m, "gate_proj", hidden, inter, bias);
    t.linear(m, "up_proj", hidden, inter, bias);
    t.linear(m, "down_proj", inter, hidden, bias);
    t.leaf(m, "act_fn", activation_class(act));
    m
}

/// `ACT2FN[hidden_act]` class names as transformers 4.57 prints them.
pub fn activation_class(act: &str) -> &'static str {
    match act {
        "silu" | "swish" => "SiLUActivation",
        "gelu" => "GELUActivation",
        "gelu_pytorch_tanh" => "PytorchGELUTanh",
        "gelu_new" => "NewGELUActivation",
        "relu" => "ReLU",
        _ => "SiLUActivation",
    }
}

fn sparse_moe_block(t: &mut ModuleTree, layer: usize, cfg: &ArchConfig) {
    let p = cfg.family.prefix();
    let moe = cfg.moe.as_ref().expect("sparse layer without MoE config");
    let h = cfg.hidden_size;
    let act = activation_class(&cfg.hidden_act);
    match cfg.family {
        Family::Mixtral => {
            let block = t.add(layer, "block_sparse_moe", &format!("{p}SparseMoeBlock"), String::new());
            t.linear(block, "gate", h, moe.num_experts, false);
            let experts = t.add_list(block, "experts");
            for e in 0..moe.num_experts {
                let ex = t.add(experts, &e.to_string(), &format!("{p}BlockSparseTop2MLP"), String::new());
                t.linear(ex, "w1", h, moe.expert_intermediate, false);
                t.linear(ex, "w2", moe.expert_intermediate, h, false);
                t.linear(ex, "w3", h, moe.expert_intermediate, false);
                t.leaf(ex, "act_fn", act);
            }
        }
        _ => {
            let block = t.add(layer, "mlp", &format!("{p}SparseMoeBlock"), String::new());
            t.linear(block, "gate", h, moe.num_experts, false);
            let experts = t.add_list(block, "experts");
            for e in 0..moe.num_experts {
                mlp(t, experts, &e.to_string(), &format!("{p}MLP"), h, moe.expert_intermediate, false, &cfg.hidden_act);
            }
            if let Some(shared) = moe.shared_expert_intermediate {
                mlp(t, block, "shared_expert", &format!("{p}MLP"), h, shared, false, &cfg.hidden_act);
                t.linear(block, "shared_expert_gate", h, 1, false);
            }
        }
    }
}
