#!/usr/bin/env bash
# Smoke test of a built bundle, headless: --version, models, upscale (bicubic), a 2-iteration
# train and an upscale with the weights it wrote (a real network in the bundle's torch), then
# the app itself for a few seconds (under xvfb-run when there is one, else Qt's offscreen
# platform). Prints the bundle size. Exit 0 only when everything passed.
#   packaging/smoke_test.sh [BUNDLE_DIR]      (default dist/srstudio, as packaging/build.sh makes)
# Other systems (untested there): Windows in Git Bash, packaging/smoke_test.sh dist/srstudio;
# macOS, packaging/smoke_test.sh "dist/SR Studio.app/Contents/MacOS".
set -euo pipefail
cd "$(dirname "$0")/.."
BUNDLE=${1:-dist/srstudio}
EXE=""
for name in srstudio srstudio.exe; do
  [ -f "$BUNDLE/$name" ] && EXE="$(cd "$BUNDLE" && pwd)/$name" && break
done
[ -n "$EXE" ] || { echo "FAIL: no srstudio in $BUNDLE (run packaging/build.sh)" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Nothing of the user's: the weights library, Qt settings and caches live in $work.
export SRSTUDIO_DATA_DIR="$work/data" XDG_CONFIG_HOME="$work/config" XDG_CACHE_HOME="$work/cache"
export QT_QPA_PLATFORM=offscreen

fail() { echo "FAIL: $*" >&2; exit 1; }
step() { printf '%-44s' "$1"; }
ok() { echo "ok ($1)"; }
now() { # seconds, with nanoseconds where date has %N (not on macOS)
  local t
  t=$(date +%s.%N)
  case $t in *N) date +%s ;; *) echo "$t" ;; esac
}
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

# Width and height of a PNG, from its IHDR chunk (no Python or `file` needed).
png_size() {
  od -An -tu1 -j16 -N8 "$1" | awk '{ printf "%dx%d", $1*16777216+$2*65536+$3*256+$4, $5*16777216+$6*65536+$7*256+$8 }'
}

# A 24x16 RGB PNG (colour ramps and a checkerboard).
base64 -d >"$work/in.png" <<'PNG'
iVBORw0KGgoAAAANSUhEUgAAABgAAAAQCAIAAACDRijCAAAAMElEQVR42mNkYBDhYjjBxWBBIcnCwH+CgcGCgYFSkoWBnwqmMIy6aNRFoy4aci4CAD/JweGPyr1CAAAAAElFTkSuQmCC
PNG
[ "$(png_size "$work/in.png")" = 24x16 ] || fail "the test image did not decode"

step "srstudio --version"
t=$(now)
version=$("$EXE" --version) || fail "--version exited $?"
want=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
[ "$version" = "srstudio $want" ] || fail "--version printed '$version', expected 'srstudio $want'"
ok "$version, $(since "$t")"

step "srstudio models"
t=$(now)
"$EXE" models >"$work/models.txt" || fail "models exited $?"
for family in RNAN CRAN A2F HPINet; do
  grep -q "$family" "$work/models.txt" || fail "models does not list $family"
done
ok "4 families listed, $(since "$t")"

step "srstudio upscale --model bicubic --scale 2"
t=$(now)
"$EXE" upscale "$work/in.png" -o "$work/out" --model bicubic --scale 2 >"$work/upscale.txt" 2>&1 ||
  fail "upscale exited $?: $(cat "$work/upscale.txt")"
out="$work/out/in_Bicubic_x2.png"
[ -f "$out" ] || fail "no $out; upscale said: $(cat "$work/upscale.txt")"
[ "$(png_size "$out")" = 48x32 ] || fail "output is $(png_size "$out"), expected 48x32"
ok "24x16 -> 48x32, $(since "$t")"

step "srstudio upscale, bundled weights"
t=$(now)
for model in A2F-SD RNAN-tiny CRAN-tiny HPINet-T; do
  "$EXE" upscale "$work/in.png" -o "$work/bundled" --model "$model" --scale 3 \
    >"$work/bundled.txt" 2>&1 || fail "upscale --model $model exited $?: $(cat "$work/bundled.txt")"
  out="$work/bundled/in_${model}_x3.png"
  [ "$(png_size "$out")" = 72x48 ] || fail "$model: $(png_size "$out"), expected 72x48"
done
ok "A2F-SD, RNAN-tiny, CRAN-tiny, HPINet-T x3: 72x48 each, $(since "$t")"

step "srstudio train A2F-SD x2, 2 iterations"
t=$(now)
mkdir -p "$work/hr"
for s in 3 4; do # HR images for training: the test image upscaled by bicubic
  "$EXE" upscale "$work/in.png" -o "$work/hr" --model bicubic --scale "$s" >/dev/null 2>&1 ||
    fail "upscale x$s exited $?"
done
"$EXE" train --model A2F-SD --scale 2 --hr "$work/hr" --iterations 2 --patch 16 --batch 2 \
  --val-split 1 --val-every 2 --output "$work/a2f.safetensors" >"$work/train.txt" 2>&1 ||
  fail "train exited $?: $(tail -5 "$work/train.txt")"
[ -s "$work/a2f.safetensors" ] || fail "train wrote no weights"
ok "$(since "$t")"

step "srstudio upscale --weights (A2F-SD x2)"
t=$(now)
"$EXE" upscale "$work/in.png" -o "$work/out2" --weights "$work/a2f.safetensors" \
  >"$work/upscale2.txt" 2>&1 || fail "upscale --weights exited $?: $(cat "$work/upscale2.txt")"
out2=$(find "$work/out2" -name '*.png' | head -1)
[ -n "$out2" ] || fail "no output; upscale said: $(cat "$work/upscale2.txt")"
[ "$(png_size "$out2")" = 48x32 ] || fail "output is $(png_size "$out2"), expected 48x32"
ok "$(basename "$out2"), $(since "$t")"

# An authors' release, "downloaded" from a loopback mirror of ../shared/official-weights (as
# docs/make_screenshots.py does), then used: HTTP, sha256 check and the checkpoint loader.
official=${SRSTUDIO_SHARED:-../shared}/official-weights
if [ -f "$official/a2f/AAF_SD_x4.pt" ] && command -v python3 >/dev/null; then
  step "srstudio models download A2F-SD-x4"
  t=$(now)
  python3 -u -m http.server 0 --bind 127.0.0.1 --directory "$official" >"$work/http.txt" 2>&1 &
  server=$!
  port=""
  for _ in $(seq 50); do
    port=$(sed -n 's/.* port \([0-9]*\) .*/\1/p' "$work/http.txt" | head -1)
    [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { kill "$server"; fail "the loopback mirror did not start"; }
  set +e
  SRSTUDIO_RELEASES_URL="http://127.0.0.1:$port" "$EXE" models download A2F-SD-x4 \
    >"$work/download.txt" 2>&1
  rc=$?
  set -e
  kill "$server"
  [ "$rc" = 0 ] || fail "models download exited $rc: $(tail -5 "$work/download.txt")"
  "$EXE" upscale "$work/in.png" -o "$work/out3" --model A2F-SD --scale 4 \
    >"$work/upscale3.txt" 2>&1 || fail "upscale A2F-SD x4 exited $?: $(cat "$work/upscale3.txt")"
  out3="$work/out3/in_A2F-SD_x4.png"
  [ -f "$out3" ] || fail "no $out3; upscale said: $(cat "$work/upscale3.txt")"
  [ "$(png_size "$out3")" = 96x64 ] || fail "output is $(png_size "$out3"), expected 96x64"
  ok "and upscaled 24x16 -> 96x64, $(since "$t")"
else
  echo "(no $official: the download step is skipped)"
fi

# The app: it must still be running after a few seconds, with no error logged.
seconds=${SMOKE_GUI_SECONDS:-10}
gui_step() {
  local how="offscreen" rc
  local run=(timeout "$seconds" "$EXE")
  if command -v xvfb-run >/dev/null; then
    how="xvfb-run"
    run=(env QT_QPA_PLATFORM=xcb timeout "$seconds" xvfb-run -a "$EXE")
  fi
  step "srstudio (the app, ${seconds} s, $how)"
  set +e
  "${run[@]}" >"$work/gui.txt" 2>&1
  rc=$?
  set -e
  [ "$rc" = 124 ] || fail "the app exited $rc within ${seconds} s: $(tail -20 "$work/gui.txt")"
  if grep -E "Traceback|ERROR|CRITICAL|could not start|failed to start|cannot start" \
    "$work/gui.txt"; then
    fail "the app logged errors (above)"
  fi
  ok "still running after ${seconds} s"
}
if command -v timeout >/dev/null; then
  gui_step
else
  echo "(no timeout command: the app step is skipped)"
fi

echo "bundle size: $(du -sh "$BUNDLE" | cut -f1) ($BUNDLE)"
echo "smoke test passed"
