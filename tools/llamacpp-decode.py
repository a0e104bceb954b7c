#!/usr/bin/env python3
"""llama.cpp's decode speed measured the way `cargo bench --bench decode` measures ours.

Same 64 prompt ids ((i·7919 + 13) mod 1000), greedy, 2 threads, tok/s = 63 / (t(64 new) − t(1 new)),
the median of 5 runs each. Needs llama-cpp-python (`pip install llama-cpp-python`, about 12 minutes
to build on 2 cores); it is not a dependency of the project, only how the README's llama.cpp
figures were taken. Usage: python tools/llamacpp-decode.py FILE.gguf [FILE.gguf …]
"""
import sys
import time

import numpy as np
from llama_cpp import Llama

PROMPT = [(i * 7919 + 13) % 1000 for i in range(64)]

for path in sys.argv[1:]:
    llm = Llama(model_path=path, n_threads=2, n_threads_batch=2, n_ctx=256, n_batch=64, logits_all=True, verbose=False)

    def run(n):
        llm.reset()
        t = time.perf_counter()
        llm.eval(PROMPT)
        for _ in range(n):
            llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
        return time.perf_counter() - t

    run(1)
    t1 = float(np.median([run(1) for _ in range(5)]))
    t64 = float(np.median([run(64) for _ in range(5)]))
    print(f"{path}: llama.cpp decode {63 / (t64 - t1):.1f} tok/s ({(t64 - t1) / 63 * 1e3:.1f} ms/token)")
