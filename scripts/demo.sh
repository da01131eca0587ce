#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build (which also generates
# the built-in demo model), show what the engine reads from it, and generate text with it.
# The demo model has the real 2B4T architecture at a small size and random weights: its text is
# gibberish. Pass a real model with `build/cpu/apps/cli/bitnet run -m ggml-model-i2_s.gguf`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh cpu
bitnet=build/cpu/apps/cli/bitnet
"$bitnet" inspect build/cpu/models/default.gguf
"$bitnet" run -p "The capital of France is" -n 32
