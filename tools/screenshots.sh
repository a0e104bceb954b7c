#!/usr/bin/env bash
# Screenshots of the real window under a virtual X server, for the README.
# Needs (Debian): xvfb imagemagick libgl1-mesa-dri xdotool. Usage: tools/screenshots.sh [out-dir]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs}
mkdir -p "$out"
cargo build --release --quiet --bin llm-anatomy
bin="${CARGO_TARGET_DIR:-target}/release/llm-anatomy"
Xvfb :99 -screen 0 1600x1000x24 -nolisten tcp & xvfb=$!
trap 'kill $xvfb 2>/dev/null || true' EXIT
# A fresh settings store: remembered views or languages must not leak into the pictures.
export DISPLAY=:99 LIBGL_ALWAYS_SOFTWARE=1 XDG_RUNTIME_DIR=$(mktemp -d) XDG_DATA_HOME=$(mktemp -d)
unset WAYLAND_DISPLAY
sleep 1
shot() { # name, then the app's arguments; SCROLL=N scrolls the centre panel N wheel steps first
  local name=$1; shift
  "$bin" "$@" & local app=$!
  sleep 4
  if [ "${SCROLL:-0}" -gt 0 ]; then
    xdotool mousemove 1300 500
    for _ in $(seq "$SCROLL"); do xdotool click 5; sleep 0.1; done
    sleep 1.5
  fi
  # The pointer off the window's content, or a tooltip it hovers lands in the picture.
  xdotool mousemove 1590 990; sleep 0.5
  import -window root -crop 1400x900+0+0 +repage "$out/$name.png"
  kill $app; wait $app 2>/dev/null || true
  echo "wrote $out/$name.png"
}
for lang in en zh; do
  if [ $lang = zh ]; then prompt="法国的首都是"; else prompt="The capital of France is"; fi
  shot screenshot-tree-$lang --lang $lang assets/demo --select model.layers.0.block_sparse_moe.gate.weight
  shot screenshot-module-$lang --lang $lang tests/fixtures/tiny-qwen2moe --select model.layers.1.mlp
  shot screenshot-bits-$lang --lang $lang tests/fixtures/tiny-llama-bf16 --select model.layers.0.self_attn.q_proj.weight
  shot screenshot-tokens-$lang --lang $lang assets/demo --prompt "$prompt"
  shot screenshot-routing-$lang --lang $lang assets/demo --prompt "The capital of Japan is Tokyo. 3 + 4 = 7" --view routing
  shot screenshot-lora-$lang --lang $lang assets/demo --adapter assets/demo/adapters/banana-is-blue --select base_model.model.model.layers.0.self_attn.q_proj
  shot screenshot-attention-$lang --lang $lang assets/demo --prompt "$prompt" --view attention
  shot screenshot-lens-$lang --lang $lang assets/demo --prompt "$prompt" --view lens
  shot screenshot-compare-$lang --lang $lang assets/demo --view compare
  SCROLL=7 shot screenshot-gguf-blocks-$lang --lang $lang tests/fixtures/gguf/families/tiny-mixtral.gguf --select model.layers.0.self_attn.q_proj.weight
done
