"""Compare two sets of ``isac-testbed reproduce <target> --quick`` outputs: the "no behaviour change" check
of the reproduction harness (issue 17). Usage::

    for t in $(isac-testbed reproduce --help | ...targets...); do
        OMP_NUM_THREADS=1 isac-testbed reproduce $t --quick --out BEFORE/$t; done   # on the old commit
    ... the same into AFTER/$t on the new one ...
    python benchmarks/compare_reproduce.py BEFORE AFTER

Every CSV (and JSON result file) a target writes is compared cell by cell as text, except the columns that
are wall-clock timings (they differ run to run by nature; listed in TIMING). Chunk/resume files are not
outputs and are skipped. Prints one line per target (identical / differs: file, column, first differing
row) and exits 1 if any target differs.
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

# columns that hold wall-clock times (or quantities derived from them, or the machine name)
TIMING = {"time_s_mean", "admm_mm_s", "admm_mm_std", "unfolded_s", "unfolded_std", "ratio", "lite_s",
          "ratio_lite", "t_start_s", "t_net_s", "t_total_s", "t_total_std_s", "ratio_vs_detection", "machine",
          "time_s_per_design"}
TIMED_FILES = {"table1.csv"}     # only in these files is "ratio" a timing ratio


def _skip(path: Path, col: str) -> bool:
    return col in TIMING and (col != "ratio" or path.name in TIMED_FILES)


def _outputs(d: Path) -> dict:
    return {p.relative_to(d): p for p in sorted(d.rglob("*"))
            if p.suffix in (".csv", ".json") and not any(part.endswith("chunks") for part in p.parts)}


def compare_csv(a: Path, b: Path) -> str | None:
    ra, rb = list(csv.reader(open(a, newline=""))), list(csv.reader(open(b, newline="")))
    if not ra or not rb or ra[0] != rb[0]:
        return f"header {ra[:1]} != {rb[:1]}"
    if len(ra) != len(rb):
        return f"{len(ra) - 1} rows != {len(rb) - 1} rows"
    keep = [j for j, c in enumerate(ra[0]) if not _skip(a, c)]
    for i, (x, y) in enumerate(zip(ra[1:], rb[1:]), 1):
        for j in keep:
            if x[j] != y[j]:
                return f"row {i} column {ra[0][j]!r}: {x[j]} != {y[j]}"
    return None


def compare_json(a: Path, b: Path) -> str | None:
    def strip(o):
        if isinstance(o, dict):
            return {k: strip(v) for k, v in o.items() if k not in TIMING}
        if isinstance(o, list):
            return [strip(v) for v in o]
        return o
    ja, jb = strip(json.loads(a.read_text())), strip(json.loads(b.read_text()))
    return None if ja == jb else "JSON values differ"


def compare_target(before: Path, after: Path) -> list[str]:
    fa, fb = _outputs(before), _outputs(after)
    diffs = [f"{k}: only before" for k in fa.keys() - fb.keys()] + [f"{k}: only after" for k in fb.keys() - fa.keys()]
    for k in sorted(fa.keys() & fb.keys()):
        d = (compare_csv if k.suffix == ".csv" else compare_json)(fa[k], fb[k])
        if d:
            diffs.append(f"{k}: {d}")
    return diffs


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: compare_reproduce.py BEFORE_DIR AFTER_DIR", file=sys.stderr)
        return 2
    before, after = map(Path, argv)
    bad = 0
    for t in sorted(p.name for p in before.iterdir() if p.is_dir()):
        if not (after / t).is_dir():
            print(f"{t}: missing after")
            bad += 1
            continue
        diffs = compare_target(before / t, after / t)
        n = len(_outputs(before / t))
        print(f"{t}: identical ({n} files, timing columns excluded)" if not diffs else f"{t}: DIFFERS: " + "; ".join(diffs))
        bad += bool(diffs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
