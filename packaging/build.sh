#!/usr/bin/env bash
# Build the one-folder SR Studio bundle for Linux: dist/srstudio/srstudio (the app with no
# arguments, the CLI with them), with weights/ and resources/ inside.
#   packaging/build.sh             then: packaging/smoke_test.sh
# A separate venv (packaging/.build-venv) keeps PyInstaller out of the dev .venv; it is made on
# first use and re-filled when pyproject.toml, packaging/requirements.txt or TORCH_SPEC change.
# Environment:
#   SRSTUDIO_BUILD_VENV  the build venv (default packaging/.build-venv)
#   PYTHON               the Python that makes it (default python3; needs a shared libpython)
#   TORCH_SPEC           the torch requirement (default torch==2.13.0)
#   TORCH_INDEX_URL      an index for torch, e.g. https://download.pytorch.org/whl/cpu to keep a
#                        Linux bundle small (PyPI's default Linux wheel is CUDA, several GB)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${SRSTUDIO_BUILD_VENV:-packaging/.build-venv}
PY=${PYTHON:-python3}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
start=$(date +%s)

[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
stamp="$VENV/.srstudio-build-installed"
want=$(cat pyproject.toml packaging/requirements.txt <(echo "$TORCH_SPEC ${TORCH_INDEX_URL:-}") |
  sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "installing the build tools into $VENV (first run takes a few minutes)..." >&2
  torch_args=()
  [ -n "${TORCH_INDEX_URL:-}" ] && torch_args=(--index-url "$TORCH_INDEX_URL")
  "$VENV/bin/python" -m pip install -q "${torch_args[@]}" "$TORCH_SPEC"
  # Editable: the spec reads app/ and engine/ from this checkout (never a stale copy); the
  # install gives the dist-info that `srstudio --version` reads.
  "$VENV/bin/python" -m pip install -q -e ".[gui]" -r packaging/requirements.txt
  echo "$want" >"$stamp"
fi

"$VENV/bin/python" -m PyInstaller packaging/srstudio-linux.spec \
  --distpath dist --workpath build/pyinstaller --noconfirm --log-level WARN

end=$(date +%s)
echo "built dist/srstudio in $((end - start)) s; size $(du -sh dist/srstudio | cut -f1)"
