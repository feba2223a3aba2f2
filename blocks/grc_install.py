"""Register the RIS-ISAC blocks with GNU Radio Companion for the current user (``make grc``).

``python -m blocks.grc_install [--python /usr/bin/python3] [--dry-run]``:

* adds ``<repo>/grc`` to ``local_blocks_path`` in the ``[grc]`` section of ``~/.gnuradio/config.conf``
  (other sections, keys and paths are kept; a path already listed is not added twice), so GRC lists the
  blocks without ``GRC_BLOCKS_PATH``;
* writes ``risisac-testbed.pth`` (one line: the repository root) into the *user* site-packages of the
  Python GRC runs (``/usr/bin/python3``, GRC's shebang, by default), so the Python files GRC generates
  import ``blocks`` and ``isac_opt`` from this checkout. The packages' own third-party needs (cvxpy,
  torch, ...) must then be importable by that Python too: they are when the venv was made with
  ``--system-site-packages`` and its packages were installed system-wide or in the user site; otherwise
  run the generated file with the venv's python (``.venv/bin/python build/fg/x.py``).

Undo: delete the ``.pth`` file and the path from ``local_blocks_path``.
"""
from __future__ import annotations

import argparse
import configparser
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PTH_NAME = "risisac-testbed.pth"


def register_blocks_path(conf: Path, blocks_dir: Path) -> bool:
    """Add ``blocks_dir`` to ``[grc] local_blocks_path`` in ``conf``; True if the file changed."""
    cp = configparser.ConfigParser(interpolation=None)
    cp.optionxform = str                                    # keep key case as GNU Radio writes it
    if conf.exists():
        cp.read(conf)
    if not cp.has_section("grc"):
        cp.add_section("grc")
    paths = [p for p in cp.get("grc", "local_blocks_path", fallback="").split(os.pathsep) if p.strip()]
    if str(blocks_dir) in paths:
        return False
    cp.set("grc", "local_blocks_path", os.pathsep.join(paths + [str(blocks_dir)]))
    conf.parent.mkdir(parents=True, exist_ok=True)
    with open(conf, "w") as f:
        cp.write(f)
    return True


def user_site(python: str) -> Path:
    """The user site-packages directory of interpreter ``python`` (honours its HOME / PYTHONUSERBASE)."""
    out = subprocess.run([python, "-c", "import site; print(site.getusersitepackages())"], capture_output=True,
                         text=True, timeout=60, env=os.environ.copy())
    if out.returncode != 0 or not out.stdout.strip():
        raise RuntimeError(f"cannot ask {python} for its user site-packages: {out.stderr.strip()[:200]}")
    return Path(out.stdout.strip())


def install(python: str = "/usr/bin/python3", home: Path | None = None, dry_run: bool = False) -> dict:
    """Do both steps; returns {'config', 'config_changed', 'pth'}."""
    home = Path(home or os.path.expanduser("~"))
    conf = home / ".gnuradio" / "config.conf"
    pth = user_site(python) / PTH_NAME
    if dry_run:
        return {"config": str(conf), "config_changed": None, "pth": str(pth)}
    changed = register_blocks_path(conf, ROOT / "grc")
    pth.parent.mkdir(parents=True, exist_ok=True)
    pth.write_text(str(ROOT) + "\n")
    return {"config": str(conf), "config_changed": changed, "pth": str(pth)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m blocks.grc_install", description=__doc__.splitlines()[0])
    ap.add_argument("--python", default="/usr/bin/python3", help="the Python GRC runs [default /usr/bin/python3]")
    ap.add_argument("--dry-run", action="store_true", help="only print what would be written")
    a = ap.parse_args(argv)
    if not Path(a.python).exists():
        print(f"error: --python: {a.python} does not exist (the interpreter GNU Radio Companion runs)",
              file=sys.stderr)
        return 2
    try:
        r = install(a.python, dry_run=a.dry_run)
    except (OSError, RuntimeError, configparser.Error) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"GRC blocks path registered in {r['config']}" + ("" if r["config_changed"] is not False else
                                                          " (already there)"))
    print(f"blocks importable by {a.python}: {r['pth']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
