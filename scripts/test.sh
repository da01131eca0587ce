#!/usr/bin/env bash
# Installs dependencies, builds the cpu preset and runs every CTest test. CI runs exactly this.
# Extra arguments go to ctest (e.g. scripts/test.sh -L unit).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh cpu
ctest --preset cpu "$@"
