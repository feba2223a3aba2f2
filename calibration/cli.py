"""``isac-testbed calibrate chains|channels|ris|clutter`` — measure, estimate, save the calibration file.

Registered through ``isac_opt.registry.COMMAND_MODULES["calibrate"] = "calibration.cli"``: the lead's CLI
calls :func:`add_parser` with its sub-parsers object. ``--backend sim`` measures through the simulated bench
(:mod:`calibration.sim_bench`) and, with ``--json``, prints one JSON object comparing the estimate with the
hidden truth. ``--backend pluto|uhd`` needs attached hardware and fails with a clear message otherwise.

Examples::

    isac-testbed calibrate chains --backend sim --seed 1 --snr-db 20 --out cal/chains --json
    isac-testbed calibrate ris --backend sim --out cal/ris_table --board-out cal/board.json
    isac-testbed calibrate channels --backend sim --scenario paper-a --seed 3 --channels-out cal/est.npz
    isac-testbed calibrate chains --backend sim --impair-seed 7 --side tx --n-chains 6 --out cal/tx
    python -m calibration.cli chains --backend sim --json          # stand-alone
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from .errors import CalibrationError, HardwareUnavailable

log = logging.getLogger(__name__)
WHATS = {
    "chains": "per-chain complex gain, delay and phase (Zadoff-Chu preamble, one chain at a time)",
    "channels": "direct + RIS-cascaded channels (orthogonal pilots x Hadamard/ON-OFF/DFT RIS sweep, affine LS)",
    "ris": "per-element, per-state RIS reflection table (the file the RIS driver loads)",
    "clutter": "clutter-plus-noise covariance for the STAP/MVDR filter from target-free frames",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=("sim", "pluto", "uhd"), default="sim",
                   help="measurement backend [default: %(default)s]")
    p.add_argument("--uri", default=None, help="SDR URI (pluto: ip:192.168.2.1; uhd: addr=...); default env SDR_URI")
    p.add_argument("--ris", default="sim://", metavar="URL", help="RIS control URL [default: %(default)s]")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="calibration file stem (writes FILE.json + FILE.npz) [default: calibration_<what>]")
    p.add_argument("--seed", type=int, default=0, help="seed of the simulated bench [default: %(default)s]")
    p.add_argument("--snr-db", type=float, default=None, help="per-sample SNR of the sim bench [dB] [default: 20]")
    p.add_argument("--json", action="store_true", help="print one JSON object (estimate vs truth for sim)")
    p.add_argument("--sigmf", default=None, metavar="DIR", help="also write the raw measurement as SigMF in DIR")
    p.add_argument("--lo-hz", type=float, default=5.8e9, help="carrier (LO) [Hz], part of the file key")
    p.add_argument("--fs-hz", type=float, default=2e6, help="sample rate [Hz], part of the file key")
    p.add_argument("--gains-db", type=float, nargs="*", default=None, help="chain gains [dB], part of the key")
    p.add_argument("--n-slots", type=int, default=None, help="number of RIS patterns / frames (channels, ris)")
    p.add_argument("--n-elements", type=int, default=None, help="RIS elements N (channels, ris)")
    p.add_argument("--n-chains", type=int, default=None, help="chains to calibrate (chains)")
    p.add_argument("--side", choices=("rx", "tx"), default="rx",
                   help="chains: RX chains from a splitter, or TX chains one at a time into RX0 [default: rx]")
    p.add_argument("--codebook", choices=("hadamard", "onoff", "dft", "random"), default=None,
                   help="RIS sweep design (channels) [default: hadamard]")
    p.add_argument("--board-out", default=None, metavar="FILE",
                   help="ris: also write a ris_driver board file (BoardSpec JSON) with the measured table")
    p.add_argument("--impair-seed", type=int, default=None, metavar="N",
                   help="chains (sim): measure the hidden chains of the simulated bench `run --impair-seed N` "
                        "(integer delays, key hardware id sim://chains?impair_seed=N)")
    p.add_argument("--scenario", default=None, metavar="NAME|FILE",
                   help="channels (sim): estimate the user channels of this paper-A scenario's realisation "
                        "--seed (needs --channels-out)")
    p.add_argument("--channels-out", default=None, metavar="FILE.npz",
                   help="channels: write the ESTIMATED paper-A channels (ChannelsA file) for "
                        "`isac-testbed design --channels FILE.npz`")
    p.add_argument("--truth-out", default=None, metavar="FILE.npz",
                   help="channels (sim): also write the hidden true channels (for `run --world-channels`)")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``calibrate`` sub-parser (with sub-commands chains|channels|ris|clutter)."""
    p = subparsers.add_parser("calibrate", help="bench calibration: chains, channels, RIS table, clutter",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", metavar="{" + ",".join(WHATS) + "}")
    sub.required = True
    for name, helptext in WHATS.items():
        sp = sub.add_parser(name, help=helptext, description=helptext)
        _common(sp)
        sp.set_defaults(func=handler)
    p.set_defaults(func=handler)
    return p


def _progress(total: int, enabled: bool):
    try:
        from tqdm import tqdm
        bar = tqdm(total=total, desc="calibrate", file=sys.stderr, disable=not enabled, leave=False)
    except ImportError:  # pragma: no cover
        bar = None

    def step(msg):
        if bar is not None:
            bar.set_postfix_str(msg)
            bar.update(1)
    return step, bar


def _sigmf(args, cal, run, key_id: str) -> str | None:
    if not args.sigmf:
        return None
    from .sigmf_io import pattern_hex, write_recording
    extra = {"calibration_id": key_id, "seed": args.seed, "backend": args.backend, "what": args.what}
    what = args.what
    if what == "chains":
        return write_recording(args.sigmf, f"calibrate_{what}", run.data.T, sample_rate=args.fs_hz,
                               frequency=args.lo_hz, global_extra=extra)
    if what == "channels":
        P = cal.patterns()
        raw = run.extra.get("raw")
        if raw is not None:                       # (T, M_rx, T_p) -> (T*T_p, M_rx), one capture per pattern
            T, Mrx, Tp = raw.shape
            samples = raw.transpose(0, 2, 1).reshape(T * Tp, Mrx)
            segs = [(t * Tp, {"ris:pattern_hex": pattern_hex(P[t]) if cal.affine else f"dft:{t}"}) for t in range(T)]
        else:
            samples, segs = run.data.reshape(len(P), -1), None
        return write_recording(args.sigmf, f"calibrate_{what}", samples, sample_rate=args.fs_hz,
                               frequency=args.lo_hz, global_extra=extra, segments=segs)
    if what == "ris":
        P = cal.patterns()
        segs = [(t, {"ris:pattern_hex": pattern_hex(P[t])}) for t in range(len(P))]
        return write_recording(args.sigmf, f"calibrate_{what}", run.data, sample_rate=args.fs_hz,
                               frequency=args.lo_hz, global_extra=extra, segments=segs)
    return write_recording(args.sigmf, f"calibrate_{what}", run.data, sample_rate=args.fs_hz,
                           frequency=args.lo_hz, global_extra=extra)


def _write_board(path: str, table: np.ndarray) -> str:
    """Write a ris_driver BoardSpec file with the measured table (a square-ish grid of N elements)."""
    from ris_driver.device import BoardSpec   # application layer: allowed here, never in the estimators
    N, S = table.shape
    bits = int(np.log2(S))
    if 2 ** bits != S:
        raise CalibrationError("table", "a power-of-two number of states for a ris_driver board", S)
    rows = int(np.sqrt(N))
    while N % rows:
        rows -= 1
    return str(BoardSpec(rows=rows, cols=N // rows, bits=bits, gamma=table, name="calibrated").save(path))


def _run_hardware(args):
    from .chains import ChainCal
    from .hardware import find_sdr_uri, measure_chains_pluto
    uri = find_sdr_uri(args.backend, args.uri)
    if args.what != "chains" or args.backend != "pluto":
        raise HardwareUnavailable(f"'calibrate {args.what}' on backend {args.backend!r} is not wired to hardware "
                                  "in this version (only 'calibrate chains --backend pluto'); record the sweep "
                                  "with the *_hw flowgraph and calibrate offline")
    cal = ChainCal(n_chains=args.n_chains or 2, side=args.side, reference=0)
    data = measure_chains_pluto(cal, uri, side=args.side, lo_hz=args.lo_hz, fs_hz=args.fs_hz)
    cal.run(data)
    report = {"what": "chains", "backend": args.backend, "uri": uri, "side": args.side,
              "phase_deg": np.degrees(np.angle(cal.coefs["gain"])).tolist(),
              "gain_db": (20 * np.log10(np.abs(cal.coefs["gain"]))).tolist(), "delay_samples": cal.coefs["delay"].tolist()}
    return cal, report, None, {"sdr": uri, "ris": args.ris}


def _sim_bench_chains(args):
    """Calibrate the hidden chains of the simulated bench ``run --impair-seed N`` (ChainCal, sim bench)."""
    from .chains import ChainCal, compare_chains
    from .sim_bench import measure_chains
    from .use import bench_chain_truth, sim_sdr_id
    n = args.n_chains or 6
    truth = bench_chain_truth(args.impair_seed, n, args.side)
    cal = ChainCal(n_chains=n, side=args.side)
    snr = 20.0 if args.snr_db is None else float(args.snr_db)
    run = measure_chains(cal, truth, snr, np.random.default_rng([int(args.impair_seed), int(args.seed), 2]))
    cal.run(run.data)
    report = {"what": "chains", "side": args.side, "impair_seed": args.impair_seed, "snr_db": snr, "n_chains": n}
    report.update(compare_chains(cal.coefs, truth))
    hw = {"backend": "sim", "sdr": sim_sdr_id(args.impair_seed), "seed": args.seed, "ris": args.ris}
    return cal, report, run, hw


def _paper_a_channels(args) -> int:
    """``calibrate channels --scenario paper-a --channels-out FILE``: estimated paper-A channels file."""
    from isac_opt.config import ScenarioA, load_scenario
    from .use import estimate_paper_a_channels
    if args.backend != "sim":
        raise HardwareUnavailable("'calibrate channels --channels-out' is wired to the simulated bench only; "
                                  "record the pilot x RIS sweep with the *_hw flowgraph and estimate offline")
    if not args.channels_out:
        raise CalibrationError("channels-out", "a .npz path for the estimated paper-A channels", None)
    scn = load_scenario(args.scenario or "paper-a")
    if not isinstance(scn, ScenarioA):
        raise CalibrationError("scenario", "a paper-A scenario", getattr(scn, "kind", type(scn).__name__))
    snr = 20.0 if args.snr_db is None else float(args.snr_db)
    est, truth, report = estimate_paper_a_channels(scn, args.seed, snr_db=snr, codebook=args.codebook or "hadamard")
    meta = {"estimated": True, "calibration": report, "lo_hz": args.lo_hz, "fs_hz": args.fs_hz,
            "representation": "G and target/clutter LoS from the geometry; h_k = conj(estimated direct); "
                              "h_rk = LS fit of the estimated cascade c_n = conj(h_rk[:, n]) G[n, :] on the known G rows"}
    est.save(args.channels_out, scn, meta=meta)
    report["channels_out"] = str(args.channels_out)
    if args.truth_out:
        truth.save(args.truth_out, scn, meta={"estimated": False, "hidden_truth_of": str(args.channels_out)})
        report["truth_out"] = str(args.truth_out)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(f"paper-A channels estimated for seed {args.seed} -> {args.channels_out}")
        for k, v in report.items():
            print(f"  {k:<26} {v:.4g}" if isinstance(v, float) else f"  {k:<26} {v}")
    return 0


def handler(args) -> int:
    """Run one calibration; returns the exit code (0 ok, 2 bad input / no hardware)."""
    from . import store
    from .sim_bench import calibrate_sim
    try:
        if args.what == "channels" and (args.channels_out or args.scenario):
            return _paper_a_channels(args)
        if args.backend == "sim" and args.what == "chains" and args.impair_seed is not None:
            bar = None
            step = lambda msg: None  # noqa: E731
            cal, report, run, hw = _sim_bench_chains(args)
        elif args.backend == "sim":
            step, bar = _progress(3, not args.json or sys.stderr.isatty())
            kw = {"n_slots": args.n_slots, "n_elements": args.n_elements, "n_chains": args.n_chains,
                  "codebook": args.codebook}
            kw = {k: v for k, v in kw.items() if v is not None}
            cal, report, run = calibrate_sim(args.what, seed=args.seed, snr_db=args.snr_db, progress=step, **kw)
            hw = {"backend": "sim", "seed": args.seed, "ris": args.ris}
        else:
            bar = None
            step = lambda msg: None  # noqa: E731
            cal, report, run, hw = _run_hardware(args)
        key = store.make_key(hardware_ids=hw, lo_hz=args.lo_hz, fs_hz=args.fs_hz, gains_db=args.gains_db)
        out = args.out or f"calibration_{args.what}"
        path = cal.save(out, key=key, meta={"report": report})
        step("saved")
        if bar is not None:
            bar.close()
        doc_id = json.loads(open(path).read())["id"]
        report["file"] = path
        report["calibration_id"] = doc_id
        if run is not None:
            sig = _sigmf(args, cal, run, doc_id)
            if sig:
                report["sigmf"] = sig
        if args.what == "ris" and args.board_out:
            report["board_file"] = _write_board(args.board_out, cal.coefs["table"])
    except HardwareUnavailable as exc:
        print(f"isac-testbed calibrate: {exc}", file=sys.stderr)
        return 2
    except (CalibrationError, ValueError) as exc:
        print(f"isac-testbed calibrate: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(repr(cal))
        for k, v in report.items():
            print(f"  {k:<26} {v:.4g}" if isinstance(v, float) else f"  {k:<26} {v}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m calibration.cli chains --backend sim --json``."""
    ap = argparse.ArgumentParser(prog="calibration")
    sub = ap.add_subparsers(dest="cmd")
    add_parser(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = ap.parse_args(["calibrate"] + argv if argv[:1] != ["calibrate"] else argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
