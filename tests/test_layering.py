"""Dependency direction (style.md §3): isac_opt never imports gnuradio/serial/zmq; ris_driver never gnuradio."""
import pkgutil
import subprocess
import sys

import pytest

import isac_opt


def _modules(pkg):
    return [m.name for m in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + ".")]


@pytest.mark.parametrize("pkg, banned", [("isac_opt", ["gnuradio", "serial", "zmq"]),
                                         ("ris_driver", ["gnuradio"])])
def test_package_never_imports(pkg, banned):
    code = (
        "import sys, importlib, pkgutil\n"
        f"for b in {banned!r}: sys.modules[b] = None\n"
        f"import {pkg}\n"
        f"mods = [m.name for m in pkgutil.walk_packages({pkg}.__path__, '{pkg}.') if not m.name.endswith('.cli')"
        " and not m.name.endswith('__main__')]\n"
        "for m in mods: importlib.import_module(m)\n"
        "print(len(mods))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
