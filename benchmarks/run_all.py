"""Run every benchmark script in this folder (``make bench``); each prints its own table."""
import pathlib
import subprocess
import sys

here = pathlib.Path(__file__).parent
rc = 0
for p in sorted(here.glob("bench_*.py")):
    print(f"=== {p.name}", flush=True)
    rc |= subprocess.call([sys.executable, str(p)] + sys.argv[1:])
sys.exit(rc)
