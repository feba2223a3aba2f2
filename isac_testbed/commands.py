"""The design-side sub-commands: ``design``, ``evaluate``, ``scenario``, ``train``, ``reproduce``, ``demo``.

Each ``add_*`` adds one sub-parser (see :data:`isac_testbed.cli.COMMANDS`); heavy modules are imported by
the handlers, never at import time. Designs go through the certified-design contract
(:mod:`isac_opt.contract`): an infeasible design fails the command unless ``--allow-infeasible``.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from isac_opt import registry
from isac_opt.errors import IsacError


def _fmt(v):
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            return str(v)
        return f"{v:.4g}"
    if isinstance(v, list):
        return "[" + ", ".join(_fmt(x) for x in v) + "]"
    return str(v)


def _json_default(o):
    import numpy as np
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


def _clean(d):
    """JSON has no inf/nan: map them to None so the output stays strict JSON."""
    if isinstance(d, dict):
        return {k: _clean(v) for k, v in d.items()}
    if isinstance(d, list):
        return [_clean(v) for v in d]
    if isinstance(d, float) and not math.isfinite(d):
        return None
    return d


def print_report(rep: dict, as_json: bool, title: str = "") -> None:
    if as_json:
        print(json.dumps(_clean(rep), default=_json_default))
        return
    if title:
        print(title)
    w = max(len(k) for k in rep) if rep else 0
    for k, v in rep.items():
        print(f"  {k:<{w}}  {_fmt(v)}")


def _kv(items) -> dict:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise IsacError(f"option {it!r}: expected key=value")
        k, v = it.split("=", 1)
        try:
            out[k] = json.loads(v)
        except json.JSONDecodeError:
            out[k] = v
    return out


# --------------------------------------------------------------------------------------------------
def cmd_design(args) -> int:
    from isac_opt.safeio import atomic_output, check_output_file
    from isac_opt.scenario import load_scenario
    out = check_output_file(args.out, force=args.force)        # before minutes of designing
    scn = load_scenario(args.scenario)
    m = registry.get_method(args.method, scn.kind)
    channels = None
    if args.channels:
        if scn.kind != "paper-a":
            raise IsacError("--channels is supported for paper-a scenarios")
        from isac_opt.paper_a.channels import ChannelsA
        channels = ChannelsA.load(args.channels, scn)
    d = m.run(scn, args.seed, channels=channels, allow_infeasible=args.allow_infeasible)
    with atomic_output(out) as tmp:
        d.save(tmp)
    rep = d.report(pfa=args.pfa)
    rep["certified"] = bool(d.extra.get("certified", True))
    rep["file"] = str(out)
    print_report(rep, args.json, f"design: {m.name} on {scn.kind} (seed {args.seed}) -> {out}")
    return 0


def cmd_evaluate(args) -> int:
    from isac_opt.designfile import load_design
    d = load_design(args.file)
    rep = d.report(pfa=args.pfa)
    v = d.violations()
    rep["certified"] = not v
    if v:
        rep["violations"] = v
    print_report(rep, args.json, f"evaluate: {args.file}")
    return 0


def cmd_scenario(args) -> int:
    from isac_opt.safeio import atomic_output, check_output_file
    from isac_opt.scenario import load_scenario
    out = check_output_file(args.out, force=args.force) if args.out else None
    scn = load_scenario(args.name)
    text = scn.to_toml()
    if out is not None:
        with atomic_output(out) as tmp:
            tmp.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def cmd_train(args) -> int:
    t = registry.get_trainer(args.task)
    paths = t.run(out_dir=args.out, scenario=args.scenario, quick=args.quick, **_kv(args.set))
    for p in paths or []:
        print(p)
    return 0


def cmd_reproduce(args) -> int:
    targets = [registry.get_target(n) for n in args.targets]     # all names checked before any work
    for t in targets:
        out = Path(args.out) / t.name
        out.mkdir(parents=True, exist_ok=True)
        kw = _kv(args.set)
        if args.executor:
            kw["executor"] = args.executor
        if args.scheduler:
            kw.setdefault("executor", "dask")
            kw["scheduler"] = args.scheduler
        paths = t.run(out_dir=str(out), quick=args.quick, workers=args.workers, **kw)
        for p in paths or []:
            print(p)
    return 0


def cmd_demo(args) -> int:
    """The main job: the simulated bench (``isac-testbed run``), then the live link (``isac-testbed link``)
    carrying ``--link-bytes`` random bytes per user with a design per frame."""
    from .cli import build_parser
    Path(args.png).parent.mkdir(parents=True, exist_ok=True)
    ns = build_parser("run").parse_args(["run", "--frames", str(args.frames), "--png", args.png])
    rc = ns.func(ns)
    if rc or args.link_bytes <= 0:
        return rc
    print()
    link_png = Path(args.png).with_name(Path(args.png).stem.replace("_run", "") + "_link.png")
    ns = build_parser("link").parse_args(["link", "--bytes", str(args.link_bytes), "--png", str(link_png), "--force"])
    return ns.func(ns)


# --------------------------------------------------------------------------------------------------
def _methods_epilog() -> str:
    lines = ["methods (scenario kind: name — summary; the first of each kind is the default):"]
    for kind in ("paper-a", "paper-b"):
        for m in registry.methods_for(kind):
            lines.append(f"  {kind}: {m.name} — {m.summary}")
    return "\n".join(lines)


def add_design(sub) -> None:
    d = sub.add_parser("design", help="design waveform, RIS and filter for a scenario",
                       epilog=_methods_epilog(), formatter_class=argparse.RawDescriptionHelpFormatter)
    d.add_argument("--scenario", default="paper-a", help="paper-a | paper-b | FILE.toml [default: paper-a]")
    d.add_argument("--method", default=None, help="design method (see below) [default: best available]")
    d.add_argument("--seed", type=int, required=True, help="seed of the channel realisation and algorithm")
    d.add_argument("--out", required=True, help="design file to write (.npz)")
    d.add_argument("--channels", default=None, help="channels file (.npz) to design for, e.g. estimated "
                                                     "by `calibrate channels` (paper-a)")
    d.add_argument("--pfa", type=float, default=1e-3, help="false-alarm probability for Pd [default 1e-3]")
    d.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    d.add_argument("--allow-infeasible", action="store_true",
                   help="keep a design that violates a constraint of its problem (marked 'certified: "
                        "false' in the file) instead of failing")
    d.add_argument("--json", action="store_true", help="print the report as one JSON object")
    d.set_defaults(func=cmd_design)


def add_evaluate(sub) -> None:
    e = sub.add_parser("evaluate", help="evaluate a design file (SINR/SCNR, CRB, CI margin, SER, Pd)")
    e.add_argument("file", help="design file (.npz)")
    e.add_argument("--pfa", type=float, default=1e-3, help="false-alarm probability [default 1e-3]")
    e.add_argument("--json", action="store_true", help="print one JSON object")
    e.set_defaults(func=cmd_evaluate)


def add_scenario(sub) -> None:
    s = sub.add_parser("scenario", help="print a built-in scenario as TOML (a template to edit)")
    s.add_argument("name", nargs="?", default="paper-a", help="paper-a | paper-b | FILE.toml")
    s.add_argument("--out", default=None, help="write to this file instead of stdout")
    s.add_argument("--force", action="store_true", help="overwrite --out if it exists")
    s.set_defaults(func=cmd_scenario)


def add_train(sub) -> None:
    registry.load_catalogs()
    t = sub.add_parser("train", help="train a learned design network",
                       epilog="tasks: " + (", ".join(f"{k} ({v.summary})" for k, v in registry.TRAINERS.items())
                                           or "(none installed)"))
    t.add_argument("task", help="training task, e.g. detect | doa")
    t.add_argument("--scenario", default="paper-a", help="paper-a | FILE.toml")
    t.add_argument("--out", required=True, help="output directory (checkpoints, log, weights)")
    t.add_argument("--quick", action="store_true", help="tiny configuration (smoke test)")
    t.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="task options (see the task's docs)")
    t.set_defaults(func=cmd_train)


def add_reproduce(sub) -> None:
    registry.load_catalogs()
    r = sub.add_parser("reproduce", help="reproduce the papers' figures and tables (PNG + CSV)",
                       epilog="targets: " + (", ".join(sorted(registry.REPRODUCE)) or "(none installed)"))
    r.add_argument("targets", nargs="+", help="figure/table names, e.g. fig4 table1 b-fig5")
    r.add_argument("--out", default="out/reproduce", help="output directory [default out/reproduce]")
    r.add_argument("--quick", action="store_true", help="small configuration (CI-sized)")
    r.add_argument("--workers", type=int, default=1, help="local worker processes [default 1]")
    r.add_argument("--executor", choices=("local", "dask"), default=None,
                   help="where Monte-Carlo chunks run: local processes (joblib) or a Dask cluster "
                        "[default local]")
    r.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (with --executor dask; "
                        "without it a temporary local cluster of --workers processes is started)")
    r.add_argument("--set", nargs="*", metavar="KEY=VALUE", help="target options")
    r.set_defaults(func=cmd_reproduce)


def add_demo(sub) -> None:
    dm = sub.add_parser("demo", help="the main job: run the simulated bench end to end and report")
    dm.add_argument("--frames", type=int, default=2000, help="frames to run [default 2000]")
    dm.add_argument("--png", default="out/demo_run.png", help="figure of the bench run [default out/demo_run.png]")
    dm.add_argument("--link-bytes", type=int, default=500,
                    help="random bytes per user sent over the live link after the bench run (0: skip) [500]")
    dm.set_defaults(func=cmd_demo)
