"""``isac-testbed link`` — the live ISAC link [issue 13; docs/link.md].

Payload bytes per user → selective-repeat ARQ packets (CRC-32) → QPSK symbols → per-frame SLP designs
(isac_opt.link engine, design-ahead worker) → channel → user receivers that demodulate without knowing the
symbols → CRC-checked packets → bytes; the radar filters every frame with the MVDR filter of the waveform
actually sent. ``--backend sim|pluto|uhd`` runs the GNU Radio flowgraph (blocks/link_pipeline.py, the blocks
of grc/flowgraphs/risisac_link_sim.grc) on the simulated channel or a front end; ``--backend numpy`` runs
the numpy reference model (isac_opt/link/loop.py). Both print the same report keys.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from isac_opt.errors import UserError

BACKENDS = ("sim", "pluto", "uhd", "numpy")
PLUTO_RATES = (520_834.0, 61.44e6)      # AD9361 baseband rates (with the FIR that frontend loads below 2.08 MS/s)


def _check_args(args) -> None:
    for name, v, lo in (("--frames", args.frames, 0), ("--max-frames", args.max_frames, 0), ("--bytes", args.bytes, 1),
                        ("--batch", args.batch, 1), ("--chunk", args.chunk, 1), ("--threads", args.threads, 1),
                        ("--window", args.window, 1)):
        if v is not None and v < lo:
            raise UserError(f"{name}: expected an integer >= {lo}, got {v}")
    if args.window > 32768:
        raise UserError(f"--window: expected at most 32768 packets (u16 sequence numbers), got {args.window}")
    if args.chunk > 65000:
        raise UserError(f"--chunk: expected at most 65000 payload bytes per packet, got {args.chunk}")
    if args.layers is not None and args.layers < 0:
        raise UserError(f"--layers: expected an integer >= 0, got {args.layers}")
    if not (args.rate > 0 and args.rate < float("inf")):
        raise UserError(f"--rate: expected a sample rate > 0, got {args.rate}")
    lo, hi = PLUTO_RATES
    if args.backend == "pluto" and not lo <= args.rate <= hi:
        raise UserError(f"--rate: a Pluto (AD936x) runs {lo:,.0f} to {hi:,.0f} S/s, got {args.rate:g}")
    if args.realtime and args.backend == "numpy":
        raise UserError("--realtime: only with a GNU Radio backend (sim, pluto, uhd)")


def _received_dir(spec, K: int):
    if not spec:
        return None
    out_dir = Path(spec)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--received: {out_dir} exists and is not a directory")
    clash = [str(out_dir / f"user{k}.bin") for k in range(K) if (out_dir / f"user{k}.bin").exists()]
    if clash:
        raise UserError(f"--received: {clash[0]} already exists (refusing to overwrite; remove it or pick "
                        f"another DIR)")
    return out_dir


def link_state(scn, seed: int):
    """The link state of the coherence block as a design file object: the seed's channels and RIS state
    (those of the A.10 start, ``realisation_rng(seed, 0/1)``); its X is a constant-modulus placeholder
    (method ``link-state``: the engine designs every frame)."""
    import numpy as np
    from isac_opt.paper_a.channels import draw_channels, realisation_rng
    from isac_opt.paper_a.design import DesignA
    from isac_opt.paper_a.starting import init_phi
    ch = draw_channels(scn, realisation_rng(seed, 0))
    phi = init_phi(scn, ch, realisation_rng(seed, 1))
    X = np.full((scn.M, scn.L), scn.amp, np.complex128)
    return DesignA.build(scn, ch, X, phi, method="link-state", seed=seed)


def cmd_link(args) -> int:
    import torch
    from isac_opt.link.packets import load_payloads
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.scenario import load_scenario
    from .commands import print_report
    _check_args(args)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available to torch on this machine")
    scn = load_scenario(args.scenario)
    if not isinstance(scn, ScenarioA):
        raise UserError(f"--scenario: the link runs paper-A scenarios, got {type(scn).__name__}")
    payloads = load_payloads(args.payload, scn.K, args.bytes, args.seed)
    out_dir = _received_dir(args.received, scn.K)
    if args.png:
        from isac_opt.safeio import check_output_file
        check_output_file(args.png, force=args.force, what="--png")   # before the run: never a silent overwrite
    torch.set_num_threads(args.threads)
    state = link_state(scn, args.seed)
    engine_kw = {"dtype": getattr(torch, args.dtype), "device": args.device, "layers": args.layers}
    if args.backend == "numpy":
        from isac_opt.link.loop import run_link
        prog = None
        if not args.json and sys.stderr.isatty():
            prog = lambda d, n: print(f"\r  link: {d} frames", end="", file=sys.stderr)
        res = run_link(scn, state.channels, state.phi, payloads, frames=args.frames, max_frames=args.max_frames,
                       chunk=args.chunk, batch=args.batch, rate=args.rate, user_noise_db=args.user_noise_db,
                       seed=args.seed, engine_kw=engine_kw, progress=prog, arq=args.arq, window=args.window)
        rep, received, arrays = dict(res.report), res.received, res.arrays
        if prog is not None:
            print(file=sys.stderr)
        title = "isac-testbed link (numpy reference model, simulated paper-A channel)"
    else:
        rep, received, arrays = _run_gr(args, state, payloads)
        title = f"isac-testbed link (GNU Radio flowgraph, backend {args.backend})"
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for k, data in enumerate(received):
            (out_dir / f"user{k}.bin").write_bytes(data)
    if args.png:
        from .link_png import write_link_png
        write_link_png(args.png, {**rep, "pfa": 1e-3}, arrays)      # threshold drawn at Pfa = 1e-3
        rep["png"] = str(args.png)
    eng = rep.pop("engine")
    rep.update({f"engine_{k}": v for k, v in eng.items()})
    print_report(rep, args.json, title=title)
    return 0


def _run_gr(args, state, payloads):
    from gnuradio import gr
    from blocks.link_pipeline import link_pipeline
    gr.logging().set_default_level(gr.log_levels.warn)      # no buffer-size info lines in the report
    fe_kw = {}
    if args.backend != "sim":
        fe_kw = {"uri": args.uri, "dev_args": args.dev_args, "samp_rate": args.rate, "center_freq": args.lo_hz}
    with tempfile.TemporaryDirectory(prefix="isac-link-") as tmp:
        state_path = Path(tmp) / "link_state.npz"
        state.save(state_path)
        pay = []
        for k, p in enumerate(payloads):          # the source block reads the payloads from files
            f = Path(tmp) / f"payload{k}.bin"
            f.write_bytes(p)
            pay.append(str(f))
        tb = link_pipeline(str(state_path), payload=",".join(pay), seed=args.seed, chunk=args.chunk,
                           layers=-1 if args.layers is None else args.layers, dtype=args.dtype, device=args.device,
                           batch=args.batch, backend=args.backend, user_noise_db=args.user_noise_db, rate=args.rate,
                           arq=args.arq, window=args.window, min_frames=args.frames or 0,
                           max_frames=args.max_frames or 0, realtime=args.realtime, threads=args.threads, **fe_kw)
        wall = tb.run_link()
        rep, received = tb.report(wall, extra={"user_noise_db": args.user_noise_db})
        return rep, received, tb.arrays


def add_parser(sub) -> None:
    p = sub.add_parser("link", help="live ISAC link: payload bytes in, per-frame SLP designs, bytes out, radar",
                       description=__doc__.split("\n\n")[0])
    p.add_argument("--scenario", default="paper-a", help="built-in name or paper-A TOML file [paper-a]")
    p.add_argument("--backend", choices=BACKENDS, default="sim",
                   help="GNU Radio flowgraph on the simulated channel (sim) or a front end (pluto, uhd), or the "
                        "numpy reference model (numpy) [sim]")
    p.add_argument("--payload", default="random",
                   help="'random', FILE (sent to every user) or FILE,FILE,... (one per user) [random]")
    p.add_argument("--bytes", type=int, default=1000, help="bytes per user of the random payload [1000]")
    p.add_argument("--frames", type=int, default=None,
                   help="frames to send at least (idle packets fill up; default: until every packet is delivered)")
    p.add_argument("--max-frames", type=int, default=None,
                   help="stop after this many frames even if ARQ has not delivered everything "
                        "(default: 10x what the payload needs)")
    p.add_argument("--received", default=None, metavar="DIR", help="write user k's delivered bytes to DIR/user<k>.bin")
    p.add_argument("--no-arq", dest="arq", action="store_false",
                   help="send every packet once (raw PER; no retransmissions)")
    p.add_argument("--window", type=int, default=4096, help="ARQ window [packets] (<= 32768) [4096]")
    p.add_argument("--user-noise-db", type=float, default=0.0, help="extra user noise [dB] over σ_k² [0]")
    p.add_argument("--rate", type=float, default=100e3,
                   help="sample rate asked [S/s] (real-time factor; the hardware rate) [1e5]")
    p.add_argument("--realtime", action="store_true",
                   help="GNU Radio sim: throttle to --rate; a late engine sends counted idle frames")
    p.add_argument("--chunk", type=int, default=64,
                   help="payload bytes per CRC'd packet (rounded up so a packet fills whole frames) [64]")
    p.add_argument("--batch", type=int, default=64, help="frames per engine call [64]")
    p.add_argument("--layers", type=int, default=0,
                   help="x-block layers of the per-frame polish after the distilled codebook lookup (0: lookup only, "
                        "the measured best per second — docs/link.md; 20: refit's depth) [0]")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="engine precision [float32]")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="engine device [cpu]")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
                   help="torch threads [$OMP_NUM_THREADS or 1]")
    p.add_argument("--seed", type=int, default=0, help="channel, RIS and noise seed [0]")
    p.add_argument("--uri", default="ip:192.168.2.1", help="Pluto URI (backend pluto)")
    p.add_argument("--dev-args", default="", help="UHD device args (backend uhd)")
    p.add_argument("--lo-hz", type=float, default=5.8e9, help="carrier [Hz] (hardware) [5.8e9]")
    p.add_argument("--png", default=None, metavar="FILE",
                   help="write the link report PNG (BER/PER vs analytic, de-rotated user samples with the CI region, "
                        "detector histogram, measured vs predicted SINR); an existing FILE is refused without --force")
    p.add_argument("--force", action="store_true", help="replace an existing --png FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_link)
