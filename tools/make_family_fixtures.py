"""Tiny random-weight model folders for the families without a shared fixture
(Mistral, Qwen3, Qwen3-MoE, OLMoE) and for RoPE scaling (Llama 3's "llama3", "linear",
Qwen's "yarn"), with reference outputs from transformers 4.57.1
(eager attention, float32, CPU): next-token logits after a prompt, 8 greedy tokens,
and per-layer router probabilities for the MoE ones.

Usage: python tools/make_family_fixtures.py [NAME ...]  (needs torch and transformers==4.57.1;
no names: all of them; each case has its own seed, so one can be remade alone)
Writes tests/fixtures/families/<name>/ and <name>.reference.json.
"""
import json, os, shutil, sys, warnings
warnings.filterwarnings("ignore")
import torch, transformers
from transformers import AutoConfig, AutoModelForCausalLM

assert transformers.__version__ == "4.57.1", transformers.__version__
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "families")
TOK = os.path.join(HERE, "..", "tests", "fixtures", "tiny-tokenizer")
tiny = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
            intermediate_size=128, vocab_size=1024, pad_token_id=2, bos_token_id=1, eos_token_id=2,
            initializer_range=0.2, rms_norm_eps=1e-5, tie_word_embeddings=False)
moe = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64)
cases = {
    "tiny-mistral": ("mistral", dict(tiny)),
    "tiny-qwen3": ("qwen3", dict(tiny, attention_bias=True)),
    "tiny-qwen3moe": ("qwen3_moe", dict(tiny, **moe, norm_topk_prob=True, num_hidden_layers=3, mlp_only_layers=[1])),
    "tiny-olmoe": ("olmoe", dict(tiny, num_experts=4, num_experts_per_tok=2, clip_qkv=3.0)),
    # Small original contexts, so the scaling reshapes most frequencies even for a short prompt.
    "tiny-llama-rope-llama3": ("llama", dict(tiny, max_position_embeddings=512, rope_scaling=dict(
        rope_type="llama3", factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=64))),
    "tiny-llama-rope-linear": ("llama", dict(tiny, rope_scaling=dict(type="linear", factor=2.0))),
    "tiny-qwen2-yarn": ("qwen2", dict(tiny, max_position_embeddings=128, rope_scaling=dict(
        type="yarn", factor=4.0, original_max_position_embeddings=32))),
}
prompt = [54, 529, 290, 81, 358, 78, 995, 945, 75, 401, 85]
os.makedirs(OUT, exist_ok=True)
only = set(sys.argv[1:])
for seed, (name, (model_type, kwargs)) in enumerate(cases.items()):
    if only and name not in only:
        continue
    torch.manual_seed(5000 + seed)
    cfg = AutoConfig.for_model(model_type, **kwargs)
    cfg._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(cfg).eval()
    with torch.no_grad():
        # Norm weights away from 1 and non-zero biases, so every parameter matters.
        for n, p in model.named_parameters():
            if p.dim() == 1:
                p.copy_((1.0 if "norm" in n else 0.0) + 0.1 * torch.randn_like(p))
    folder = os.path.join(OUT, name)
    model.save_pretrained(folder, safe_serialization=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(os.path.join(TOK, f), folder)
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model(ids, output_router_logits=cfg.model_type in ("qwen3_moe", "olmoe"))
        logits = out.logits[0, -1].tolist()
        greedy = model.generate(ids, max_new_tokens=8, do_sample=False, eos_token_id=None, pad_token_id=2)[0, len(prompt):].tolist()
    ref = {"transformers": transformers.__version__, "model_type": model_type, "input_ids": prompt,
           "last_logits": logits, "greedy_ids": greedy, "repr": repr(model)}
    if getattr(out, "router_logits", None) is not None:
        ref["router_probs"] = [torch.softmax(r.float(), dim=-1).tolist() for r in out.router_logits]
    json.dump(ref, open(os.path.join(OUT, name + ".reference.json"), "w"))
    print(name, greedy)
