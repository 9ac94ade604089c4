#!/usr/bin/env bash
# Called by Maven (cuda/pom.xml): `maven-build.sh build` or `maven-build.sh test`.
# Builds the kernel library when nvcc exists, otherwise says so and skips; the host tests
# need only a C++ compiler and always run.
set -euo pipefail
cd "$(dirname "$0")"
# NVCC=/path/to/nvcc overrides the search (NVCC=none forces the skip).
nvcc_bin=${NVCC:-$(command -v nvcc 2>/dev/null || ls -d /usr/local/cuda*/bin/nvcc 2>/dev/null | head -1 || true)}
case "${1:-build}" in
  build)
    if [ -z "$nvcc_bin" ] || [ ! -x "$nvcc_bin" ]; then
      echo "[cuda] nvcc not found: SKIPPING the CUDA kernel build (libmonostream_moe.so)."
      echo "[cuda] Install the CUDA toolkit (built and checked with 13.0) to build it; see cuda/README.md."
      exit 0
    fi
    echo "[cuda] building with $nvcc_bin (${CUDA_MAKE_TARGET:-all})"
    make NVCC="$nvcc_bin" "${CUDA_MAKE_TARGET:-all}"
    ;;
  test)
    if [ "${SKIP_TESTS:-false}" = "true" ]; then
      echo "[cuda] host tests skipped (-DskipTests)"
      exit 0
    fi
    make test
    ;;
  *)
    echo "usage: $0 build|test" >&2
    exit 2
    ;;
esac
