#!/usr/bin/env python3
"""Writes the small GGUF fixtures under tests/fixtures/gguf/ with gguf-py, and what gguf-py's
`dequantize` makes of every tensor, so tests/gguf.rs can check the Rust decoders bit for bit.

    python3 -m venv /tmp/ggufvenv && /tmp/ggufvenv/bin/pip install gguf==0.19.0 numpy
    /tmp/ggufvenv/bin/python tools/make_gguf_fixtures.py

Deterministic: the same gguf and numpy versions give the same bytes.

all-types.gguf holds
  - `src`, a 4×256 F32 tensor with the awkward cases (zero block, constant block, ties,
    a negative extreme, large and tiny magnitudes);
  - `src.F16`, `src.BF16`, `src.Q4_0`, `src.Q4_1`, `src.Q5_0`, `src.Q5_1`, `src.Q8_0`: `src`
    through gguf-py's `quantize` (ggml's reference quantizers), so the Rust quantizers can be
    checked against these bytes too;
  - `rand.Q2_K` … `rand.Q6_K`: random K-quant blocks (gguf-py cannot quantize K-quants), with
    their f16 scales set to finite values so every weight is a number;
  - one metadata key of every value type, nested arrays included.
all-types.reference.json holds, per tensor, gguf-py's dequantized values as little-endian f32
hex (exact bits), plus the type and shape.

families/*.gguf are the project's tiny safetensors fixtures converted the way llama.cpp's
convert_hf_to_gguf.py does: tensor names from gguf-py's own name map, experts merged into
3-D `ffn_*_exps`, llama-arch q/k rows permuted (`LlamaModel.permute`), `{arch}.*` keys from
config.json, 2-D weights as Q4_0 (gguf-py's quantize) and the rest F32. tests/gguf.rs opens
each and checks tree, names, shapes and values against the safetensors folder.
"""

import json
import os

import gguf
import numpy as np
from gguf import GGMLQuantizationType as T

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf")


def source() -> np.ndarray:
    rng = np.random.default_rng(13)
    src = (rng.standard_normal((4, 256)) * 0.02).astype(np.float32)
    src[1, :32] = 0.0  # all-zero block: d = 0, the 1/d guard
    src[1, 32:64] = 0.25  # constant block: max == min for Q4_1/Q5_1
    src[1, 64:96] = np.arange(32, dtype=np.float32) / 16 - 1  # exact ties at .5 after scaling
    src[1, 96] = -3.0  # negative extreme sets the Q4_0/Q5_0 scale sign
    src[2] *= np.float32(1000.0)
    src[3] *= np.float32(1e-4)
    src[3, 200:232] = np.array([1e-8 * (i - 16) for i in range(32)], dtype=np.float32)
    return src


def k_blocks(qtype: T, n_blocks: int, rng) -> np.ndarray:
    """Random blocks with the f16 scale fields replaced by finite, sensible halves."""
    block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    scale_fields = {T.Q2_K: [80, 82], T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208]}[qtype]
    for at in scale_fields:
        halves = (rng.standard_normal(n_blocks) * 0.01).astype(np.float16)
        raw[:, at : at + 2] = halves.view(np.uint8).reshape(n_blocks, 2)
    return raw


def add_metadata(w: gguf.GGUFWriter) -> None:
    w.add_uint8("test.u8", 200)
    w.add_int8("test.i8", -100)
    w.add_uint16("test.u16", 60000)
    w.add_int16("test.i16", -30000)
    w.add_uint32("test.u32", 4000000000)
    w.add_int32("test.i32", -2000000000)
    w.add_float32("test.f32", 0.1)
    w.add_bool("test.bool", True)
    w.add_string("test.string", "héllo\nworld")
    w.add_uint64("test.u64", 2**63 + 5)
    w.add_int64("test.i64", -(2**62))
    w.add_float64("test.f64", 0.1)
    w.add_array("test.array_i32", list(range(-3, 40)))
    w.add_array("test.array_str", ["a", "bc", ""])
    w.add_array("test.array_nested", [[1, 2], [3]])
    w.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m['content'] }}{% endfor %}")


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, "all-types.gguf")
    src = source()
    tensors: list[tuple[str, np.ndarray, T]] = [("src", src, T.F32), ("src.F16", src.astype(np.float16), T.F16)]
    for qtype in [T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0]:
        tensors.append((f"src.{qtype.name}", gguf.quants.quantize(src, qtype), qtype))
    rng = np.random.default_rng(2024)
    for qtype in [T.Q2_K, T.Q3_K, T.Q4_K, T.Q5_K, T.Q6_K]:
        tensors.append((f"rand.{qtype.name}", k_blocks(qtype, 3, rng).reshape(1, -1), qtype))

    w = gguf.GGUFWriter(path, arch="test")
    add_metadata(w)
    reference = {"gguf_py": gguf.__version__ if hasattr(gguf, "__version__") else "0.19.0", "tensors": {}}
    for name, data, qtype in tensors:
        w.add_tensor(name, data, raw_dtype=qtype)
        values = gguf.quants.dequantize(data, qtype).astype(np.float32)
        reference["tensors"][name] = {
            "ggml_type": int(qtype),
            "type_name": qtype.name,
            "shape": list(values.shape),
            "values_f32_le_hex": values.astype("<f4").tobytes().hex(),
        }
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    with open(os.path.join(OUT, "all-types.reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")
    print(path, os.path.getsize(path), "bytes")


def read_safetensors(path: str) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        assert e["dtype"] == "F32", (path, name, e["dtype"])
        a, b = e["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype="<f4").reshape(e["shape"])
    return out


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """convert_hf_to_gguf.py's LlamaModel.permute."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


FAMILIES = {
    # fixture: (gguf arch, general.name)
    "tiny-mixtral": (gguf.MODEL_ARCH.LLAMA, "Tiny Mixtral"),
    "families/tiny-mistral": (gguf.MODEL_ARCH.LLAMA, "Tiny Mistral"),
    "tiny-qwen2moe": (gguf.MODEL_ARCH.QWEN2MOE, "Tiny Qwen2 MoE"),
    "families/tiny-qwen3": (gguf.MODEL_ARCH.QWEN3, "Tiny Qwen3"),
    # (tiny-qwen3moe is left out: its dense layer 1 has no GGUF form; llama.cpp's qwen3moe
    # has no mlp_only_layers.)
    "families/tiny-olmoe": (gguf.MODEL_ARCH.OLMOE, "Tiny OLMoE"),
}


def family_keys(w: gguf.GGUFWriter, c: dict) -> None:
    w.add_block_count(c["num_hidden_layers"])
    w.add_context_length(c["max_position_embeddings"])
    w.add_embedding_length(c["hidden_size"])
    w.add_feed_forward_length(c["intermediate_size"])
    w.add_head_count(c["num_attention_heads"])
    w.add_head_count_kv(c.get("num_key_value_heads", c["num_attention_heads"]))
    w.add_layer_norm_rms_eps(c.get("rms_norm_eps", 1e-5))
    theta = c.get("rope_theta") or c.get("rope_parameters", {}).get("rope_theta", 10000.0)
    w.add_rope_freq_base(theta)
    head_dim = c.get("head_dim", c["hidden_size"] // c["num_attention_heads"])
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_dimension_count(head_dim)
    w.add_vocab_size(c["vocab_size"])
    if (n := c.get("num_local_experts") or c.get("num_experts")) is not None:
        w.add_expert_count(n)
        w.add_expert_used_count(c["num_experts_per_tok"])
    if (n := c.get("moe_intermediate_size")) is not None:
        w.add_expert_feed_forward_length(n)
    if (n := c.get("shared_expert_intermediate_size")) is not None:
        w.add_expert_shared_feed_forward_length(n)
    for key, add in [("bos_token_id", w.add_bos_token_id), ("eos_token_id", w.add_eos_token_id), ("pad_token_id", w.add_pad_token_id)]:
        if isinstance(c.get(key), int):
            add(c[key])


def convert(fixture: str, arch, name: str) -> None:
    folder = os.path.join(HERE, "..", "tests", "fixtures", fixture)
    c = json.load(open(os.path.join(folder, "config.json")))
    tensors = read_safetensors(os.path.join(folder, "model.safetensors"))
    n_layers = c["num_hidden_layers"]
    name_map = gguf.get_tensor_name_map(arch, n_layers)
    merged: dict[str, list] = {}
    out: list[tuple[str, np.ndarray]] = []
    for hf, data in tensors.items():
        parts = hf.split(".")
        if "experts" in parts and parts[parts.index("experts") + 1].isdigit():
            i = parts.index("experts")
            key = ".".join(parts[: i + 1] + parts[i + 2 :])
            merged.setdefault(key, []).append((int(parts[i + 1]), data))
            continue
        if arch == gguf.MODEL_ARCH.LLAMA and hf.endswith(("q_proj.weight", "k_proj.weight")):
            n = c["num_attention_heads"] if "q_proj" in hf else c["num_key_value_heads"]
            data = permute(data, n)
        out.append((name_map.get_name(hf, try_suffixes=(".weight", ".bias")) or hf, data))
    for key, experts in merged.items():
        stacked = np.stack([d for _, d in sorted(experts, key=lambda e: e[0])])
        out.append((name_map.get_name(key, try_suffixes=(".weight", ".bias")), stacked))
    path = os.path.join(OUT, "families", os.path.basename(fixture) + ".gguf")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    w = gguf.GGUFWriter(path, arch=gguf.MODEL_ARCH_NAMES[arch])
    w.add_name(name)
    family_keys(w, c)
    missing = [g for g, _ in out if not g.startswith(("blk.", "token_embd", "output"))]
    assert not missing, (fixture, missing)
    for gname, data in sorted(out):
        if data.ndim >= 2 and data.shape[-1] % 32 == 0:
            w.add_tensor(gname, gguf.quants.quantize(np.ascontiguousarray(data), T.Q4_0), raw_dtype=T.Q4_0)
        else:
            w.add_tensor(gname, np.ascontiguousarray(data, dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    print(path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
    for fixture, (arch, name) in FAMILIES.items():
        convert(fixture, arch, name)
