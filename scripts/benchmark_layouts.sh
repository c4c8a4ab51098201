#!/usr/bin/env bash
# The measurements behind `--channels_last auto` (models/training/acceleration.py): the training step of
# pix2pix, cycle_gan and srgan (each model's default setting) in NCHW and NHWC, at fp32 and bf16, on this CPU
# as it is (native bf16 where it has AVX512-BF16/AMX) and with oneDNN and ATen capped at AVX2, which is how an
# AVX2-only CPU runs the same code (bf16 emulated there). One command, interleaved by ISA per repeat:
#
#   scripts/benchmark_layouts.sh OUTDIR [REPEATS]     # then: python scripts/benchmark_layouts_table.py OUTDIR
#
# bf16 under the AVX2 cap is not measured: emulated, even pix2pix's NHWC step had not done its warm-up and 3
# steps after 4 minutes (2 s/step at fp32), contiguous is slower still, and `--amp auto` never picks it there.
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
    run "$isa" srgan "$configs" "$steps" "$repeat"
    # cycle_gan trains with --norm instance, which refuses NHWC: its default can only be NCHW, at bf16 or fp32
    run "$isa" cycle_gan "fp32,default" "$(( steps > 2 ? 2 : steps ))" "$repeat"
  done
done
