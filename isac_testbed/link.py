"""``isac-testbed link`` — the live ISAC link, numpy level [issue 13; docs/link.md].

Payload bytes per user → CRC'd packets → QPSK symbols → per-frame SLP designs (isac_opt.link engine,
design-ahead queue) → paper A's simulated channel → user receivers that demodulate without knowing the
symbols → bytes; the radar filters every frame with the MVDR filter of the waveform actually sent.
GNU Radio streaming of the same link is not part of this command yet.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from isac_opt.errors import UserError


def _payloads(spec: str, K: int, n_bytes: int, seed: int) -> list[bytes]:
    import numpy as np
    if spec == "random":
        return [np.random.default_rng([seed, 7, k]).bytes(n_bytes) for k in range(K)]
    files = [s for s in spec.split(",")]
    if len(files) not in (1, K) or any(not f for f in files):
        raise UserError(f"--payload: expected 'random', one FILE, or {K} comma-separated files (one per user), "
                        f"got {spec!r}")
    out = []
    for f in files:
        p = Path(f)
        if not p.is_file():
            raise UserError(f"--payload: {f}: no such file")
        try:
            data = p.read_bytes()
        except OSError as e:
            raise UserError(f"--payload: {f}: cannot read ({e.strerror})") from None
        if not data:
            raise UserError(f"--payload: {f}: the file is empty")
        out.append(data)
    return out * K if len(out) == 1 else out


def cmd_link(args) -> int:
    import torch
    from isac_opt.link.loop import run_link
    from isac_opt.paper_a.channels import draw_channels, realisation_rng
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.paper_a.starting import init_phi
    from isac_opt.scenario import load_scenario
    from .commands import print_report
    for name, v, lo in (("--frames", args.frames, 0), ("--bytes", args.bytes, 1), ("--batch", args.batch, 1),
                        ("--chunk", args.chunk, 1), ("--threads", args.threads, 1)):
        if v is not None and v < lo:
            raise UserError(f"{name}: expected an integer >= {lo}, got {v}")
    if args.layers is not None and args.layers < 0:
        raise UserError(f"--layers: expected an integer >= 0, got {args.layers}")
    if not args.rate > 0:
        raise UserError(f"--rate: expected a sample rate > 0, got {args.rate}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to torch on this machine")
    scn = load_scenario(args.scenario)
    if not isinstance(scn, ScenarioA):
        raise UserError(f"--scenario: the link runs paper-A scenarios, got {type(scn).__name__}")
    payloads = _payloads(args.payload, scn.K, args.bytes, args.seed)
    out_dir = None
    if args.received:
        out_dir = Path(args.received)
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"--received: {out_dir} exists and is not a directory")
        clash = [str(out_dir / f"user{k}.bin") for k in range(scn.K) if (out_dir / f"user{k}.bin").exists()]
        if clash:
            raise UserError(f"--received: {clash[0]} already exists (refusing to overwrite; remove it or pick "
                            f"another DIR)")
    torch.set_num_threads(args.threads)
    ch = draw_channels(scn, realisation_rng(args.seed, 0))
    phi = init_phi(scn, ch, realisation_rng(args.seed, 1))
    prog = None
    if not args.json and sys.stderr.isatty():
        prog = lambda d, n: print(f"\r  link: {d}/{n} frames", end="" if d < n else "\n", file=sys.stderr)
    res = run_link(scn, ch, phi, payloads, frames=args.frames, chunk=args.chunk, batch=args.batch,
                   rate=args.rate, user_noise_db=args.user_noise_db, seed=args.seed,
                   engine_kw={"dtype": getattr(torch, args.dtype), "device": args.device, "layers": args.layers},
                   progress=prog)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for k, data in enumerate(res.received):
            (out_dir / f"user{k}.bin").write_bytes(data)
    rep = dict(res.report)
    rep["payload_bytes"] = [len(p) for p in payloads]
    rep["delivered_bytes"] = [len(r) for r in res.received]
    eng = rep.pop("engine")
    rep.update({f"engine_{k}": v for k, v in eng.items()})
    print_report(rep, args.json, title="isac-testbed link (numpy level, simulated paper-A channel)")
    return 0


def add_parser(sub) -> None:
    p = sub.add_parser("link", help="live ISAC link: payload bytes in, per-frame SLP designs, bytes out, radar",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="paper-a", help="built-in name or paper-A TOML file [paper-a]")
    p.add_argument("--payload", default="random",
                   help="'random', FILE (sent to every user) or FILE,FILE,... (one per user) [random]")
    p.add_argument("--bytes", type=int, default=1000, help="bytes per user of the random payload [1000]")
    p.add_argument("--frames", type=int, default=None,
                   help="frames to send at least (idle packets fill up; default: what the payload needs)")
    p.add_argument("--received", default=None, metavar="DIR", help="write user k's delivered bytes to DIR/user<k>.bin")
    p.add_argument("--user-noise-db", type=float, default=0.0, help="extra user noise [dB] over σ_k² [0]")
    p.add_argument("--rate", type=float, default=100e3, help="sample rate asked [S/s] (real-time factor) [1e5]")
    p.add_argument("--chunk", type=int, default=64, help="payload bytes per CRC'd packet [64]")
    p.add_argument("--batch", type=int, default=64, help="frames per engine call [64]")
    p.add_argument("--layers", type=int, default=2,
                   help="x-block layers of the per-frame polish (0: radar-aware codebook lookup only; 20: refit's depth) [2]")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="engine precision [float32]")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="engine device [cpu]")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
                   help="torch threads [$OMP_NUM_THREADS or 1]")
    p.add_argument("--seed", type=int, default=0, help="channel, RIS and noise seed [0]")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_link)
