#!/usr/bin/env bash
# The run on a lent GPU machine: the examples' GPU-vs-CPU-variant check, the matmul sweep, the full benchmark, a kernel profile of the training steps.
#
# Prepare here:  npm run bench:bundle && ../shared/gpu/pack.sh
# Run there (the `run` tool, carry [".gpu", "dist/bench"]):
#   DLC_BENCH_COMMIT=<sha> bash .gpu/enter.sh bash bench/gpu-run.sh "$OUT"
# Writes check.json, sweep.json, <name>.json (the benchmark results) and the logs under the folder given ($OUT).
set -uo pipefail
out=${1:?usage: gpu-run.sh OUTDIR [sweep|bench|profile]...}
shift
steps=${*:-check sweep bench profile}
# NVIDIA's Vulkan driver where the image keeps its ICD outside the loader's default folders
if [ -z "${VK_DRIVER_FILES:-}" ] && [ -f /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json ] && ! ls /usr/share/vulkan/icd.d/nvidia* /etc/vulkan/icd.d/nvidia* >/dev/null 2>&1; then
  export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.used,memory.total --format=csv 2>&1 | tee "$out/nvidia-smi.txt"
for step in $steps; do
  case $step in
    check) timeout 120 node dist/bench/check.mjs --out "$out/check.json" 2>&1 | grep -v '^Warning' | tee "$out/check.log" ;;
    sweep) timeout 100 node dist/bench/sweep.mjs --out "$out/sweep.json" 2>&1 | grep -v '^Warning' | tee "$out/sweep.log" ;;
    bench) timeout 200 node dist/bench/run.mjs --full --out "$out/gpu.json" --no-doc 2>&1 | grep -v '^Warning' | tee "$out/bench.log" ;;
    profile) timeout 90 node dist/bench/run.mjs --full --only mlp,lenet,transformer --reps 10 --profile --out "$out/profile.json" --no-doc 2>&1 | grep -v '^Warning' | tee "$out/profile.log" ;;
    *) echo "unknown step $step" ;;
  esac
done
