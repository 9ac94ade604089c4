#!/usr/bin/env bash
# Called by Maven (model-operator/pom.xml, phase generate-resources): compiles the CPU kernels of
# the decode path (*.c here, ABI in monostream_cpu.h) into OUT_DIR/libmonostream_cpu.so, which the
# jar then carries as a resource. Without a C compiler, or off Linux x86-64, it says so and skips:
# the engine then runs everything through libtorch (io.monostream.torch.CpuKernels logs why, once).
set -euo pipefail
out_dir=${1:?usage: build.sh OUT_DIR}
src_dir="$(cd "$(dirname "$0")" && pwd)"
cc_bin=${CC:-$(command -v gcc 2>/dev/null || command -v cc 2>/dev/null || true)}
if [ "$(uname -s)-$(uname -m)" != "Linux-x86_64" ]; then
  echo "[cpu-kernel] $(uname -s)-$(uname -m): SKIPPING libmonostream_cpu.so (Linux x86-64 only); the decode path runs through libtorch."
  exit 0
fi
if [ -z "$cc_bin" ]; then
  echo "[cpu-kernel] no C compiler (gcc): SKIPPING libmonostream_cpu.so; the decode path runs through libtorch. Install gcc to build it."
  exit 0
fi
mkdir -p "$out_dir"
lib="$out_dir/libmonostream_cpu.so"
stale=0
for f in "$src_dir"/*.c "$src_dir"/*.h; do
  [ "$lib" -nt "$f" ] || stale=1
done
[ "$stale" = 1 ] || exit 0
# -Wno-psabi: the 64-byte vector helpers are always inlined, so their ABI note does not apply.
"$cc_bin" -std=c11 -O3 -Wall -Wextra -Werror -Wno-psabi -fPIC -fvisibility=hidden -pthread -shared \
  -Wl,--no-undefined -I"$src_dir" "$src_dir"/*.c -lm -o "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "[cpu-kernel] built $lib with $cc_bin"
