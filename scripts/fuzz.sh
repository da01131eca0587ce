#!/usr/bin/env bash
# Fuzzes the GGUF reader with libFuzzer (clang, ASan + UBSan) for N seconds (default 60).
# Seeds: a valid tiny model written by xtask (if the cpu preset is built) and a minimal header.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
cmake --preset fuzz > /dev/null
cmake --build --preset fuzz
corpus=build/fuzz/corpus
mkdir -p "$corpus"
if [ -x build/cpu/tools/xtask/xtask ]; then
  build/cpu/tools/xtask/xtask gen-model --preset tiny --seed 1 -q -o "$corpus/tiny.gguf"
fi
printf 'GGUF\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00' > "$corpus/empty.gguf"
build/fuzz/modules/models/gguf_reader_fuzz -max_total_time="$seconds" -max_len=300000 -print_final_stats=1 "$corpus"
