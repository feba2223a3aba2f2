#!/usr/bin/env bash
# Idempotent set-up on Debian 12: system GNU Radio + libiio, a --system-site-packages venv from
# /usr/bin/python3, and the project in editable mode under constraints.txt (numpy stays 1.x).
set -euo pipefail
VENV=${1:-.venv}
cd "$(dirname "$0")/.."

need_pkgs=()
for p in gnuradio python3-libiio libiio-utils python3-venv; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_pkgs+=("$p")
done
if ((${#need_pkgs[@]})); then
    echo "setup: installing Debian packages: ${need_pkgs[*]}"
    if [ "$(id -u)" = 0 ]; then SUDO=""; elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
        echo "setup: ERROR: missing Debian packages ${need_pkgs[*]} and no root/sudo." >&2
        echo "       Install them with: sudo apt-get install ${need_pkgs[*]}" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "setup: creating $VENV from /usr/bin/python3 (--system-site-packages)"
    /usr/bin/python3 -m venv --system-site-packages "$VENV"
fi
"$VENV/bin/python" -c "import gnuradio" || { echo "setup: ERROR: $VENV cannot import gnuradio" >&2; exit 1; }
"$VENV/bin/python" -m pip install -q --upgrade pip >/dev/null 2>&1 || true
"$VENV/bin/python" -m pip install -q -c constraints.txt -e ".[dev]"
"$VENV/bin/python" - <<'PY'
import numpy, torch
from gnuradio import gr
assert numpy.__version__.startswith("1."), f"numpy {numpy.__version__}: GNU Radio needs numpy 1.x"
print(f"setup: ok  numpy {numpy.__version__}  torch {torch.__version__}  gnuradio {gr.version()}")
PY
# compile the detection network's numba kernel once (cached next to its source; later runs load it)
"$VENV/bin/python" -m isac_opt.paper_a.unfold.fastnet_jit
