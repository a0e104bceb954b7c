"""Reference module-tree texts for families that have no weight fixture.

Runs transformers 4.57.1 (`pip install transformers==4.57.1 torch`), builds each model
on the meta device from a config, and records `repr(model)` beside the config as a
Hub folder would store it (`to_diff_dict`). Output: tests/fixtures/repr-cases.json.
"""
import json, sys, warnings
warnings.filterwarnings("ignore")
import torch, transformers
from transformers import AutoConfig, AutoModelForCausalLM

assert transformers.__version__ == "4.57.1", transformers.__version__
tiny = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
            intermediate_size=128, vocab_size=1024, pad_token_id=2)
moe = dict(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=64)
cases = [
    ("llama-bias-nopad", "llama", dict(tiny, pad_token_id=None, attention_bias=True, mlp_bias=True, head_dim=16)),
    ("llama-tied", "llama", dict(tiny, tie_word_embeddings=True)),
    ("mistral", "mistral", dict(tiny, head_dim=16)),
    ("mistral-no-head-dim", "mistral", dict(tiny, head_dim=None, rms_norm_eps=1e-5)),
    ("qwen2", "qwen2", dict(tiny)),
    ("qwen3", "qwen3", dict(tiny, head_dim=16)),
    ("qwen3-default-head-dim", "qwen3", dict(tiny, attention_bias=True)),
    ("mixtral-8", "mixtral", dict(tiny, num_local_experts=8, num_experts_per_tok=2)),
    ("qwen2_moe", "qwen2_moe", dict(tiny, **moe, shared_expert_intermediate_size=128)),
    ("qwen2_moe-interleaved", "qwen2_moe", dict(tiny, **moe, shared_expert_intermediate_size=96,
        num_hidden_layers=5, decoder_sparse_step=2, mlp_only_layers=[3], qkv_bias=False)),
    ("qwen3_moe", "qwen3_moe", dict(tiny, **moe)),
    ("qwen3_moe-interleaved", "qwen3_moe", dict(tiny, **moe, num_hidden_layers=4, mlp_only_layers=[0], head_dim=32)),
    ("olmoe", "olmoe", dict(tiny, num_experts=4, num_experts_per_tok=2)),
    ("olmoe-head-dim-ignored", "olmoe", dict(tiny, num_experts=4, num_experts_per_tok=2, head_dim=32, pad_token_id=None)),
]
out = []
for name, model_type, kwargs in cases:
    cfg = AutoConfig.for_model(model_type, **kwargs)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(cfg)
    config = cfg.to_diff_dict()
    config["model_type"] = model_type
    config["architectures"] = [type(model).__name__]
    out.append({"name": name, "config": config, "repr": repr(model),
                "num_parameters": model.num_parameters()})
json.dump({"transformers": transformers.__version__, "cases": out},
          open(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/repr-cases.json", "w"), indent=1)
print(len(out), "cases")
