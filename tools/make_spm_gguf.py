#!/usr/bin/env python3
"""Writes tests/fixtures/gguf/tiny-spm.gguf, a llama-architecture GGUF whose tokenizer is
SentencePiece-style (`tokenizer.ggml.model = "llama"`: tokens, scores, token types, byte
fallback), and tiny-spm.reference.json with the ids llama.cpp's own tokenizer gives for a
few texts, so tests/gguf.rs can check that the program tokenizes such files as llama.cpp does.

    python3 -m venv /tmp/v && /tmp/v/bin/pip install gguf==0.19.0 numpy llama-cpp-python==0.3.36
    /tmp/v/bin/python tools/make_spm_gguf.py

The vocabulary is made here, deterministically: the control tokens, the 256 byte tokens,
then pieces of a small English/Chinese corpus with scores (higher = merged first), the way a
SentencePiece model lists them. No tensors: llama.cpp reads the vocabulary with vocab_only.
"""

import json
import os

import gguf
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "gguf")

PIECES = [
    "▁", "e", "t", "a", "o", "i", "n", "s", "h", "r", "l", "d", "c", "u", "p", "f", "T", "F", "P", "H", "W",
    "▁t", "he", "▁the", "▁a", "in", "er", "on", "▁c", "ap", "it", "al", "▁of", "▁F", "ra", "nce", "▁is",
    "▁P", "ar", "is", "ll", "▁he", "▁hell", "▁hello", "▁w", "or", "ld", "▁wor", "▁world", "▁The", "▁cap",
    "▁capital", "▁Fra", "▁France", "▁Par", "▁Paris", "▁in", "▁on", "ing", "▁s", "▁Hello", "▁H", ",", ".", "!",
    "中", "文", "中文", "你", "好", "你好", "▁你好", "▁中",
]

# SentencePiece scores: the earlier a piece was learned, the higher its score.
TEXTS = [
    "The capital of France is Paris.",
    "hello world",
    " hello  world ",
    "Hello, world!",
    "你好，中文",
    "<s>hello</s> world",
    "caf\u00e9 \u2603",
    "",
]


def main():
    # A SentencePiece vocabulary holds every character its pieces are made of.
    pieces = PIECES + sorted({c for p in PIECES for c in p} - set(PIECES))
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)] + pieces
    types = [2, 3, 3] + [6] * 256 + [1] * len(pieces)
    scores = [0.0, 0.0, 0.0] + [0.0] * 256 + [-float(i) for i in range(len(pieces))]
    path = os.path.join(OUT, "tiny-spm.gguf")
    w = gguf.GGUFWriter(path, "llama")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(len(tokens))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores(scores)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_add_space_prefix(True)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()

    from llama_cpp import Llama

    llm = Llama(model_path=path, vocab_only=True, verbose=False)
    cases = [{"text": t, "ids": llm.tokenize(t.encode("utf-8"), add_bos=True, special=True)} for t in TEXTS]
    ref = {
        "llama_cpp_python": __import__("llama_cpp").__version__,
        "note": "llm.tokenize(text, add_bos=True, special=True) with vocab_only=True",
        "cases": cases,
    }
    with open(os.path.join(OUT, "tiny-spm.reference.json"), "w") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
    for c in cases:
        print(repr(c["text"]), c["ids"], [tokens[i] for i in c["ids"]])


if __name__ == "__main__":
    main()
