#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, generate a model with
# the real 2B4T architecture (small preset, LLaMA 3 tokenizer when ../shared is present) and
# show what the engine reads from it. (Text generation arrives with the generation issue.)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh cpu
mkdir -p build/models
model=build/models/small.gguf
tokenizer=../shared/fixtures/tokenizers/llama3/tokenizer.json
args=(gen-model --preset small --seed 1 -o "$model")
[ -f "$tokenizer" ] && args+=(--tokenizer "$tokenizer")
build/cpu/tools/xtask/xtask "${args[@]}"
build/cpu/apps/cli/bitnet validate "$model"
build/cpu/apps/cli/bitnet inspect "$model"
