#!/usr/bin/env bash
# The measurements behind `--channels_last auto` (models/training/acceleration.py): the training step of
# pix2pix, cycle_gan and srgan (each model's default setting) in NCHW and NHWC, at fp32 and bf16, on this CPU
# as it is (native bf16 where it has AVX512-BF16/AMX) and with oneDNN and ATen capped at AVX2, which is how an
# AVX2-only CPU runs the same code (bf16 emulated there). One command, interleaved by ISA per repeat:
#
#   scripts/benchmark_layouts.sh OUTDIR [REPEATS]     # then: python scripts/benchmark_layouts_table.py OUTDIR
#
# bf16 under the AVX2 cap is measured for pix2pix only: oneDNN's reference bf16 kernels make a contiguous
# cycle_gan or srgan step take many minutes, and `--amp auto` never picks bf16 there.
# STEPS, WARMUP, THREADS and PYTHON can be set in the environment.
set -euo pipefail
out=${1:?usage: $0 OUTDIR [REPEATS]}
repeats=${2:-1}
python=${PYTHON:-python}
steps=${STEPS:-3} warmup=${WARMUP:-1} threads=${THREADS:-1}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
run() {  # ISA MODEL CONFIGS STEPS REPEAT
  local isa=$1 model=$2 configs=$3 n=$4 repeat=$5 env=()
  [[ $isa == avx2 ]] && env=(ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2)
  env "${env[@]}" "$python" "$here/benchmark.py" --no-sr --settings default --models "$model" \
    --configs "$configs" --steps "$n" --warmup "$warmup" --threads "$threads" --timeout 900 \
    --json "$out/$model.$isa.$repeat.json" --markdown "$out/$model.$isa.$repeat.md" || true
}
for repeat in $(seq 1 "$repeats"); do
  for isa in native avx2; do
    # `default` last: what `auto` resolves to here, next to the layouts it chose between
    if [[ $isa == native ]]; then configs="fp32,fp32_cl,bf16,bf16_cl,default"; else configs="fp32,fp32_cl,default"; fi
    run "$isa" pix2pix "$configs" "$steps" "$repeat"
    if [[ $isa == avx2 ]]; then run avx2 pix2pix "bf16_cl" "$steps" "$repeat"; fi
    run "$isa" srgan "$configs" "$steps" "$repeat"
    run "$isa" cycle_gan "${configs%,default}" "$(( steps > 2 ? 2 : steps ))" "$repeat"
  done
done
