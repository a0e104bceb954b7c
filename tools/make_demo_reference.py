#!/usr/bin/env python3
"""Reference outputs for the bundled demo model (assets/demo), made without this program's code.

The demo is a MixtralForCausalLM trained by `train-demo`, so its pinned greedy outputs in tests/demo.rs are
only its own output. This script checks it like every other fixture: token ids from Hugging Face
`tokenizers` (the library behind transformers' fast tokenizer) with the chat template rendered by jinja2 as
transformers' apply_chat_template does, and a float64 numpy forward pass written from transformers'
modeling_mixtral.py (4.57): RMSNorm, rotary embedding (default rope, rotate_half), grouped-query causal
attention, a top-2 softmax router whose chosen weights are renormalised, SiLU-gated experts w2(silu(w1 x) * w3 x).

No torch is needed:

    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install numpy safetensors tokenizers jinja2
    /tmp/venv/bin/python tools/make_demo_reference.py   # writes tests/fixtures/demo.reference.json

(versions used: numpy 2.4.6, safetensors 0.8.0, tokenizers 0.23.3, jinja2 3.1.6.)
"""

import json
import pathlib

import jinja2
import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

ROOT = pathlib.Path(__file__).resolve().parent.parent
DEMO = ROOT / "assets" / "demo"
OUT = ROOT / "tests" / "fixtures" / "demo.reference.json"

PROMPTS = [
    ("The capital of France is", False),
    ("法国的首都是", False),
    ("3 + 4 =", False),
    ("What color is a banana?", True),
]
GREEDY_TOKENS = 10

cfg = json.loads((DEMO / "config.json").read_text())
tok_cfg = json.loads((DEMO / "tokenizer_config.json").read_text())
W = {k: v.astype(np.float64) for k, v in load_file(str(DEMO / "model.safetensors")).items()}
tokenizer = Tokenizer.from_file(str(DEMO / "tokenizer.json"))

H = cfg["hidden_size"]
N_HEADS = cfg["num_attention_heads"]
N_KV = cfg["num_key_value_heads"]
HEAD_DIM = cfg.get("head_dim", H // N_HEADS)
EPS = cfg["rms_norm_eps"]
THETA = cfg["rope_theta"]
N_EXPERTS = cfg["num_local_experts"]
TOP_K = cfg["num_experts_per_tok"]


def rms_norm(x, w):
    # MixtralRMSNorm: x * rsqrt(mean(x^2) + eps), then weight * x.
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + EPS))


def rotate_half(x):
    half = x.shape[-1] // 2
    return np.concatenate([-x[..., half:], x[..., :half]], axis=-1)


def rope(n):
    inv_freq = 1.0 / (THETA ** (np.arange(0, HEAD_DIM, 2, dtype=np.float64) / HEAD_DIM))
    freqs = np.outer(np.arange(n, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], axis=-1)
    return np.cos(emb), np.sin(emb)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def silu(x):
    return x / (1.0 + np.exp(-x))


def forward(ids):
    """Logits of every position and, per layer, the router's top-k experts and weights per token."""
    n = len(ids)
    h = W["model.embed_tokens.weight"][ids]
    cos, sin = rope(n)
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    routing = []
    for layer in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        x = rms_norm(h, W[p + "input_layernorm.weight"])
        q = (x @ W[p + "self_attn.q_proj.weight"].T).reshape(n, N_HEADS, HEAD_DIM).transpose(1, 0, 2)
        k = (x @ W[p + "self_attn.k_proj.weight"].T).reshape(n, N_KV, HEAD_DIM).transpose(1, 0, 2)
        v = (x @ W[p + "self_attn.v_proj.weight"].T).reshape(n, N_KV, HEAD_DIM).transpose(1, 0, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = N_HEADS // N_KV  # repeat_kv
        k = np.repeat(k, rep, axis=0)
        v = np.repeat(v, rep, axis=0)
        att = softmax(q @ k.transpose(0, 2, 1) / np.sqrt(HEAD_DIM) + mask)
        o = (att @ v).transpose(1, 0, 2).reshape(n, N_HEADS * HEAD_DIM)
        h = h + o @ W[p + "self_attn.o_proj.weight"].T

        x = rms_norm(h, W[p + "post_attention_layernorm.weight"])
        probs = softmax(x @ W[p + "block_sparse_moe.gate.weight"].T)
        # torch.topk order: largest first (no exact ties in trained weights).
        top = np.argsort(-probs, axis=-1, kind="stable")[:, :TOP_K]
        weights = np.take_along_axis(probs, top, axis=-1)
        weights = weights / weights.sum(axis=-1, keepdims=True)
        out = np.zeros_like(x)
        for t in range(n):
            for e, w in zip(top[t], weights[t]):
                ep = f"{p}block_sparse_moe.experts.{e}."
                y = silu(x[t] @ W[ep + "w1.weight"].T) * (x[t] @ W[ep + "w3.weight"].T)
                out[t] += w * (y @ W[ep + "w2.weight"].T)
        h = h + out
        routing.append({"layer": layer, "topk_ids": top.tolist(), "topk_weights": weights.tolist()})
    h = rms_norm(h, W["model.norm.weight"])
    return h @ W["lm_head.weight"].T, routing


def render_chat(user):
    template = jinja2.Environment().from_string(tok_cfg["chat_template"])
    return template.render(messages=[{"role": "user", "content": user}], add_generation_prompt=True)


def main():
    prompts = []
    for text, chat in PROMPTS:
        rendered = render_chat(text) if chat else text
        ids = tokenizer.encode(rendered, add_special_tokens=False).ids
        logits, routing = forward(ids)
        seq = list(ids)
        for _ in range(GREEDY_TOKENS):
            seq.append(int(np.argmax(forward(seq)[0][-1])))
        greedy = seq[len(ids):]
        prompts.append({
            "text": text,
            "chat": chat,
            "rendered": rendered,
            "input_ids": ids,
            "last_logits": logits[-1].tolist(),
            "router": routing,
            "greedy_ids": greedy,
            "greedy_text": tokenizer.decode(greedy, skip_special_tokens=False),
        })
    OUT.write_text(json.dumps({
        "model": "assets/demo",
        "made_by": "tools/make_demo_reference.py: tokenizers + jinja2 ids, float64 numpy Mixtral forward",
        "prompts": prompts,
    }, ensure_ascii=False, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
