#!/usr/bin/env bash
# GPU checks and an A/B timing of two `bitnet` builds on a lent device, in one call.
#
#   bench/gpu_ab.sh pack BASE_BITNET   # here: build/gpu binaries + BASE_BITNET + their shared
#                                      # libraries into .devrun/ (keep it under ~48 MB)
#   bench/gpu_ab.sh run                # on the device (carry .devrun): GPU kernel tests, GPU
#                                      # parity, then tg after 16 and 512 tokens, pp512 and x32
#                                      # for the base and the new build, alternating
#
# .devrun/ is ignored by git (add `/.devrun/` to .git/info/exclude). Read the numbers against
# the floor `bitnet bench` prints (the device's measured read bandwidth).
set -euo pipefail
mode=${1:-}
D=.devrun
case "$mode" in
pack)
    base=${2:?usage: bench/gpu_ab.sh pack BASE_BITNET}
    rm -rf "$D" && mkdir -p "$D/lib"
    cp build/gpu/apps/cli/bitnet build/gpu/modules/kernels/bitnet_kernels_tests \
        build/gpu/tests/bitnet_gpu_parity_tests build/gpu/tools/xtask/xtask "$D/"
    cp "$base" "$D/bitnet_base"
    strip "$D"/bitnet* "$D"/xtask
    # Everything the binaries link that a bare device image may lack (not the C/C++ runtime).
    for b in "$D"/bitnet* "$D"/xtask; do ldd "$b" | awk '/=>/ {print $3}'; done | sort -u |
        grep -v -E 'libc\.so|libm\.so|libstdc\+\+|libgcc_s|ld-linux|libpthread|libdl\.|librt\.' |
        xargs -I{} cp -L {} "$D/lib/"
    du -sh "$D"
    ;;
run)
    export LD_LIBRARY_PATH=$PWD/$D/lib
    nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
    "$D/xtask" gen-model --preset 2b4t -q -o /tmp/2b4t.gguf > /dev/null
    echo "== GPU kernel tests";  "$D/bitnet_kernels_tests" 2>&1 | tail -2
    echo "== GPU parity tests";  "$D/bitnet_gpu_parity_tests" 2>&1 | tail -2
    for round in 1 2; do
        for b in bitnet_base bitnet; do
            echo "== $b (round $round)"
            "$D/$b" bench -m /tmp/2b4t.gguf --device cuda -p 512 -n 128 -r 3 2>&1 | grep -E '^\| (pp|tg)'
            "$D/$b" bench -m /tmp/2b4t.gguf --device cuda -p 16 -n 128 -r 3 2>&1 | grep -E '^\| tg'
            "$D/$b" bench -m /tmp/2b4t.gguf --device cuda -p 16 -n 64 -r 2 -b 32 2>&1 |
                grep -E '^\| ' | tail -1
        done
    done
    ;;
*)
    sed -n 2,12p "$0"
    exit 2
    ;;
esac
