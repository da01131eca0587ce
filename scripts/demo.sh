#!/usr/bin/env bash
# The main job on a fresh Debian 12 machine: install dependencies, build, show what the engine
# reads from the built-in demo model, and generate text with it. The demo model is a small
# BitNet b1.58 trained by this project on the King James Bible (docs/demo-model.md); for the
# real 2B model run `build/cpu/tools/xtask/xtask download-model` and then `bitnet run` again.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh cpu
bitnet=build/cpu/apps/cli/bitnet
"$bitnet" inspect assets/demo-model/bitnet-demo-kjv-i2_s.gguf
"$bitnet" run -p "In the beginning" -n 64 --seed 1
