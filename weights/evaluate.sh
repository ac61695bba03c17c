#!/usr/bin/env bash
# Measures the bundled weights (and MATLAB bicubic) on Set5 and Set14, float Y, the papers'
# protocol: `bash weights/evaluate.sh` from the repository root, with ../shared beside it.
# Prints one markdown row per model and scale: Set5 PSNR/SSIM, Set14 PSNR/SSIM.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=../shared/benchmarks
row() {  # label, then the model options
  local label=$1 scale=$2 cells=""
  shift 2
  for set in Set5 Set14; do
    cells+=$(./run eval "$@" --scale "$scale" --hr "$bench/$set/x$scale/HR" \
      --lr "$bench/$set/x$scale/LR" --tile 0 --device cpu --json |
      python3 -c "import json, sys; r = json.load(sys.stdin); print(' %.2f / %.4f |' % (r['psnr'], r['ssim']), end='')")
  done
  echo "| $label | x$scale |$cells"
}
for scale in 2 3 4; do
  row "Bicubic" "$scale" --model bicubic
  for weights in weights/*-x"$scale".safetensors; do
    row "$(basename "$weights" -x"$scale".safetensors)" "$scale" --weights "$weights"
  done
done
