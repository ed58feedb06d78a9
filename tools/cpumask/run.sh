#!/usr/bin/env bash
# Runs a command as if the CPU had no AVX-512 (CPUMASK_HIDE=avx512, the default) or no
# AVX/AVX2/FMA either (CPUMASK_HIDE=avx2), by preloading tools/cpumask/cpumask.c (compiled into
# .cache/cpumask/ when missing or older than its source). Needs CPUID faulting (`cpuid_fault` in
# /proc/cpuinfo); exits 77 without running the command when the CPU lacks it.
# Usage: tools/cpumask/run.sh COMMAND [ARGS...]
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: tools/cpumask/run.sh COMMAND [ARGS...]   (CPUMASK_HIDE=avx512, the default, or avx2)" >&2
  exit 64
fi
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SRC=$ROOT/tools/cpumask/cpumask.c
LIB=$ROOT/.cache/cpumask/cpumask.so
if ! grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -qx cpuid_fault; then
  echo "cpumask: this CPU has no CPUID faulting (no cpuid_fault in /proc/cpuinfo); cannot hide its features" >&2
  exit 77
fi
if [ ! -s "$LIB" ] || [ "$SRC" -nt "$LIB" ]; then
  mkdir -p "$(dirname "$LIB")"
  cc -O2 -shared -fPIC -o "$LIB.part" "$SRC" && mv "$LIB.part" "$LIB"
fi
export LD_PRELOAD="$LIB${LD_PRELOAD:+:$LD_PRELOAD}"
exec "$@"
