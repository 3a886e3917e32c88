#!/usr/bin/env bash
# The wheel works where users meet it: installed into a fresh venv, run from an empty folder outside the
# repository, with nothing of the checkout on its path. Builds the sdist and wheel (`python -m build`), then runs
# the five verbs a user starts with: models fetch, discover, edit, serve (the page answers), invert a photo.
#
#   tests/dist_check.sh                   # uses .venv/bin/python to build (needs the `build` package: the test extra)
#   PY=/path/to/python tests/dist_check.sh
#
# Weights come from the usual cache ($TLGAN_HOME or ~/.cache/tlgan), so `tlgan models fetch` finds them there
# after `make models`. Everything else lives in a temporary folder that is removed at the end.
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$REPO/.venv/bin/python}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}  # the Makefile's CPU build; any torch>=2.1 works
WORK=$(mktemp -d "${TMPDIR:-/tmp}/tlgan-dist.XXXXXX")
SERVER_PID=""
START=$(date +%s)

cleanup() {
    if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

step() { printf '[dist %4ss] %s\n' "$(( $(date +%s) - START ))" "$*"; }
fail() { echo "dist check FAILED: $*" >&2; exit 1; }

step "build the sdist and the wheel"
"$PY" -m build --outdir "$WORK/dist" "$REPO" >"$WORK/build.log" 2>&1 || { tail -20 "$WORK/build.log"; fail "python -m build"; }
WHEEL=$(ls "$WORK"/dist/tlgan-*.whl)
SDIST=$(ls "$WORK"/dist/tlgan-*.tar.gz)
step "built $(basename "$WHEEL") and $(basename "$SDIST")"

step "fresh venv, $TORCH_SPEC, the wheel with its app extra"
"$PY" -m venv "$WORK/venv"  # a fresh venv of the same Python: none of the repo venv's packages
VPY="$WORK/venv/bin/python"
TLGAN="$WORK/venv/bin/tlgan"
{ "$VPY" -m pip install -q "$TORCH_SPEC" && "$VPY" -m pip install -q "$WHEEL[app]"; } >"$WORK/pip.log" 2>&1 \
    || { tail -20 "$WORK/pip.log"; fail "pip install of $TORCH_SPEC and the wheel"; }

# An empty folder outside the repository, and no PYTHONPATH: only the installed wheel can answer.
mkdir "$WORK/user"
cd "$WORK/user"
unset PYTHONPATH
"$VPY" - "$REPO" <<'EOF'
import sys
from pathlib import Path
import tlgan
where = Path(tlgan.__file__).resolve()
assert Path(sys.argv[1]) not in where.parents, f"tlgan imported from the checkout: {where}"
EOF

VERSION=$("$VPY" -c "import tlgan; print(tlgan.__version__)")
[ "$("$TLGAN" --version)" = "tlgan, version $VERSION" ] || fail "tlgan --version says '$("$TLGAN" --version)', not $VERSION"
[ "$("$VPY" -m tlgan --version)" = "tlgan, version $VERSION" ] || fail "python -m tlgan --version"
step "tlgan $VERSION installed; tlgan --version and python -m tlgan agree"

step "tlgan models fetch"
"$TLGAN" models fetch >/dev/null

step "tlgan discover -n 300"
"$TLGAN" discover -n 300 --out demo --device cpu >discover.log 2>&1 || { tail -20 discover.log; fail "discover"; }
for f in demo/axes.safetensors demo/axes.json demo/traversal.png demo/run/run.json; do
    [ -s "$f" ] || fail "discover wrote no $f"
done
"$VPY" - "$VERSION" <<'EOF'
import json, sys
for header in ("demo/axes.json", "demo/run/run.json"):
    found = json.load(open(header)).get("tlgan_version")
    assert found == sys.argv[1], f"{header} names tlgan version {found!r}, not {sys.argv[1]}"
EOF

step "tlgan edit (a seed, with a lock)"
"$TLGAN" edit demo/axes.safetensors --seed 3 --move age=+2 --lock male -o older.png --device cpu >/dev/null
[ -s older.png ] || fail "edit wrote no older.png"

step "tlgan invert (Grace Hopper's photo, matplotlib's sample) and edit the result"
PHOTO=$("$VPY" -c "import matplotlib, os; print(os.path.join(matplotlib.get_data_path(), 'sample_data', 'grace_hopper.jpg'))")
cp "$PHOTO" photo.jpg
"$TLGAN" invert photo.jpg --steps 5 --device cpu >invert.log 2>&1 || { tail -20 invert.log; fail "invert"; }
[ -s photo.latent.npz ] && [ -s photo.png ] || fail "invert wrote no photo.latent.npz / photo.png"
"$TLGAN" edit demo/axes.safetensors --latent photo.latent.npz --move happy=+1.5 -o happier.png --device cpu >/dev/null
[ -s happier.png ] || fail "edit of the inverted photo wrote no happier.png"

step "tlgan serve (the page answers on 127.0.0.1)"
PORT=$("$VPY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$TLGAN" serve demo/axes.safetensors --port "$PORT" --device cpu >serve.log 2>&1 &
SERVER_PID=$!
"$VPY" - "$PORT" "$SERVER_PID" <<'EOF' || { tail -20 serve.log; fail "serve: the page did not answer"; }
import os, sys, time, urllib.request
port, pid = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 180
while time.monotonic() < deadline:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as r:
            page = r.read().decode("utf-8", "replace")
        assert r.status == 200 and "tlgan explorer" in page, f"status {r.status}, page without the explorer's title"
        sys.exit(0)
    except OSError:
        os.kill(pid, 0)  # raises if the server died
        time.sleep(1)
sys.exit("no answer within 180 s")
EOF
kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""

step "all verbs ran from the installed wheel"
echo "dist check passed in $(( $(date +%s) - START )) s"
