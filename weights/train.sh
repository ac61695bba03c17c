#!/usr/bin/env bash
# Re-trains the bundled weights exactly as they were made: `bash weights/train.sh [MODEL...]`
# from the repository root with ../shared beside it (MODEL: A2F-SD, RNAN-tiny, CRAN-tiny,
# HPINet-T, Cleanup-S; default all five, one after the other). One thread per run, as the shipped files were
# made (two runs at a time on a 2-core CPU; a run's result does not depend on what else runs).
# x2 trains from scratch; x3 and x4 start from the x2 weights (--init: all but the upsampler);
# x4, the scale most used, then trains 6000 iterations more from its own weights (--base); later
# steps trained more files further the same way and made HPINet-T's x2 and x3 again from its x4,
# and A2F-SD's x4 from its x3 (further(), below).
# Training images: ../shared/train only (T91, BSD200, SunHays80), 10 of them held out to validate.
# `bash weights/train.sh --device cuda [--minutes 10] [MODEL...]` is the prepared GPU run instead:
# all twelve trained further from their own files, about 10 minutes on one large NVIDIA GPU
# (weights/train_gpu.py says how).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--device" ] && [ "${2:-}" != "cpu" ]; then
  ./run models >/dev/null # installs on first use
  exec "${SRSTUDIO_VENV:-.venv}/bin/python" weights/train_gpu.py "$@"
fi
[ "${1:-}" = "--device" ] && shift 2 # --device cpu: the recipe below
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
train=../shared/train

common() { # ITERATIONS LEARNING_RATE OUTPUT [more srstudio train options]
  local iterations=$1 rate=$2 output=$3
  shift 3
  ./run train --patch 32 --batch 8 --learning-rate "$rate" --ema 0.998 --val-split 10 \
    --val-max 4 --seed 0 --device cpu --precision fp32 \
    --hr "$train/T91" --hr "$train/BSD200" --hr "$train/SunHays80" \
    --iterations "$iterations" --output "$output" "$@"
}

run() { # MODEL SCALE ITERATIONS [more srstudio train options]
  common "$3" 1e-3 "weights/$1-x$2.safetensors" --model "$1" --scale "$2" "${@:4}"
}

family() { # MODEL X2_ITERATIONS X3_X4_ITERATIONS [X2_RESUMED_TO]
  local model=$1
  run "$model" 2 "$2" --val-every $(($2 / 2))
  if [ -n "${4:-}" ]; then # HPINet-T x2: 2500 iterations fell short of +2 dB, resumed to 5000
    run "$model" 2 "$4" --val-every 1250 --resume
  fi
  for scale in 3 4; do
    run "$model" "$scale" "$3" --val-every $(($3 / 2)) --init "weights/$model-x2.safetensors"
  done
  refine "$model" 4 6000
}

refine() { # MODEL SCALE ITERATIONS [RATE]: trained further from its own weights (default: at half
  # the first rate)
  local weights="weights/$1-x$2.safetensors"
  common "$3" "${4:-5e-4}" "$weights" --base "$weights" --val-every $(($3 / 4))
}

further() { # MODEL: the steps later sessions added (issue 17), in the order they ran
  case $1 in
    A2F-SD) refine A2F-SD 2 8000 && refine A2F-SD 3 5000 && refine A2F-SD 3 5000 &&
        run A2F-SD 4 10000 --val-every 2500 --init weights/A2F-SD-x3.safetensors &&
        refine A2F-SD 4 3000 && refine A2F-SD 4 4000 3e-4 &&
        refine A2F-SD 2 6000 && refine A2F-SD 2 4000 3e-4 ;;
    RNAN-tiny) refine RNAN-tiny 2 5000 && refine RNAN-tiny 3 2000 && refine RNAN-tiny 3 5000 &&
        refine RNAN-tiny 4 8000 && refine RNAN-tiny 4 6000 && refine RNAN-tiny 4 3000 3e-4 &&
        refine RNAN-tiny 4 4000 2e-4 && refine RNAN-tiny 2 5000 ;;
    CRAN-tiny) refine CRAN-tiny 2 5000 && refine CRAN-tiny 3 4000 && refine CRAN-tiny 3 2500 &&
        refine CRAN-tiny 4 7000 && refine CRAN-tiny 4 6000 && refine CRAN-tiny 2 5000 ;;
    HPINet-T) # x2 and x3 then made again from the x4, better trained than the x2 they came from
      refine HPINet-T 4 3000 && refine HPINet-T 4 1000 2e-4 &&
        run HPINet-T 2 6000 --val-every 1500 --init weights/HPINet-T-x4.safetensors &&
        run HPINet-T 3 3500 --val-every 1750 --init weights/HPINet-T-x4.safetensors &&
        refine HPINet-T 2 3000 ;;
  esac
}

cleanup() { # the 1x clean-up network (issue 31): JPEG and noise on LR-like targets, from scratch,
  # with two threads, as the shipped file was made
  OMP_NUM_THREADS=2 MKL_NUM_THREADS=2 ./run train --model Cleanup-S --scale 1 \
    --degradation real --patch 48 --batch 16 --learning-rate 5e-4 --iterations 3000 \
    --val-split 10 --val-every 500 --checkpoint-every 250 --seed 0 --device cpu --precision fp32 \
    --hr "$train/T91" --hr "$train/BSD200" --hr "$train/SunHays80" \
    --output weights/Cleanup-S-x1.safetensors
}

behind() { # MODEL: its x4 trained further behind the clean-up network (issue 31's second design):
  # on what Cleanup-S makes of damaged LR patches, written beside the x4 as MODEL-x4-photo
  OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 ./run train --degradation real --behind-cleanup \
    --patch 32 --batch 8 --learning-rate 3e-4 --ema 0.998 --val-split 10 --val-max 4 --seed 0 \
    --device cpu --precision fp32 --hr "$train/T91" --hr "$train/BSD200" --hr "$train/SunHays80" \
    --iterations 3000 --val-every 500 --checkpoint-every 250 \
    --base "weights/$1-x4.safetensors" --output "weights/$1-x4-photo.safetensors"
}

models=("$@")
[ ${#models[@]} -gt 0 ] || models=(A2F-SD RNAN-tiny CRAN-tiny HPINet-T Cleanup-S)
for model in "${models[@]}"; do
  case $model in
    Cleanup-S) cleanup && continue ;;
    A2F-SD | RNAN-tiny | CRAN-tiny) family "$model" 3000 2000 ;;
    HPINet-T) family HPINet-T 2500 1500 5000 ;;
    *) echo "unknown model $model" >&2 && exit 2 ;;
  esac
  further "$model"
done
rm -f weights/*.resume.pt
