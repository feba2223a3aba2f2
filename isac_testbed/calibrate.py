"""``isac-testbed calibrate chains|channels|ris|clutter`` — measure, estimate, save the calibration file.

Declared in :data:`isac_testbed.cli.COMMANDS`; each sub-command has only its own options. ``--backend sim`` measures through the simulated bench
(:mod:`calibration.sim_bench`) and, with ``--json``, prints one JSON object comparing the estimate with the
hidden truth. ``--backend pluto|uhd`` needs attached hardware and fails with one line (exit 2) otherwise;
all four run on Pluto and USRP through :mod:`calibration.frontend` + :mod:`calibration.hw_measure`
(``docs/calibration.md``, bench procedure).

Examples::

    isac-testbed calibrate chains --backend sim --seed 1 --snr-db 20 --out cal/chains --json
    isac-testbed calibrate ris --backend sim --out cal/ris_table --board-out cal/board.json
    isac-testbed calibrate channels --backend sim --scenario paper-a --seed 3 --channels-out cal/est.npz
    isac-testbed calibrate chains --backend sim --impair-seed 7 --side tx --n-chains 6 --out cal/tx
    isac-testbed calibrate channels --backend pluto --uri ip:192.168.2.1 --ris serial:///dev/ttyUSB0
    isac-testbed calibrate ris --backend uhd --ris zmq://127.0.0.1:5555 --positions 16 --wait-s 20
    isac-testbed calibrate clutter --backend pluto --design out/design.npz --n-slots 512
    isac-testbed calibrate chains --backend uhd --uri serial=31A5D2B --side tx --n-chains 2 --out cal/tx --sigmf rec/
    python -m isac_testbed.calibrate chains --backend sim --json   # stand-alone
"""
from __future__ import annotations

import argparse
import json
import logging
import sys

import numpy as np

from calibration.errors import CalibrationError, HardwareUnavailable

log = logging.getLogger(__name__)
WHATS = {
    "chains": "per-chain complex gain, delay and phase (Zadoff-Chu preamble, one chain at a time)",
    "channels": "direct + RIS-cascaded channels (orthogonal pilots x Hadamard/ON-OFF/DFT RIS sweep, affine LS)",
    "ris": "per-element, per-state RIS reflection table (the file the RIS driver loads)",
    "clutter": "clutter-plus-noise covariance for the STAP/MVDR filter from target-free frames",
}


def _options(p: argparse.ArgumentParser, what: str) -> None:
    """Add the options that belong to sub-command ``what``; the others only set their defaults, so an option
    of another sub-command is rejected by the parser and absent from this one's ``--help``."""
    defaults = {}

    def own(owners: str | None):
        class _Adder:
            def __init__(self, target):
                self.t = target

            def add_argument(self, *flags, **kw):
                if owners is None or what in owners.split():
                    return self.t.add_argument(*flags, **kw)
                dest = kw.get("dest") or flags[0].lstrip("-").replace("-", "_")
                defaults[dest] = False if kw.get("action") == "store_true" else kw.get("default")
        return _Adder

    own(None)(p).add_argument("--backend", choices=("sim", "pluto", "uhd"), default="sim",
                   help="measurement backend [default: %(default)s]")
    own(None)(p).add_argument("--uri", default=None, help="SDR URI (pluto: ip:192.168.2.1; uhd: addr=...); default env SDR_URI")
    own('channels ris clutter')(p).add_argument("--ris", default=None, metavar="URL",
                   help="RIS control URL (ris_driver.open_ris: serial:///dev/ttyUSB0, osris+serial://..., "
                        "zmq://host:port, sim://NAME) [default: sim:// for --backend sim; required on hardware "
                        "for channels and ris]")
    own(None)(p).add_argument("--force", action="store_true",
                              help="overwrite existing output files (calibration, channels, board files)")
    own(None)(p).add_argument("--out", default=None, metavar="FILE",
                   help="calibration file stem (writes FILE.json + FILE.npz) [default: calibration_<what>]")
    own(None)(p).add_argument("--seed", type=int, default=0, help="seed of the simulated bench [default: %(default)s]")
    own(None)(p).add_argument("--snr-db", type=float, default=None, help="per-sample SNR of the sim bench [dB] [default: 20]")
    own(None)(p).add_argument("--json", action="store_true", help="print one JSON object (estimate vs truth for sim)")
    own(None)(p).add_argument("--sigmf", default=None, metavar="DIR", help="also write the raw measurement as SigMF in DIR")
    own(None)(p).add_argument("--lo-hz", type=float, default=5.8e9, help="carrier (LO) [Hz], part of the file key")
    own(None)(p).add_argument("--fs-hz", type=float, default=2e6, help="sample rate [Hz], part of the file key")
    own(None)(p).add_argument("--gains-db", type=float, nargs="*", default=None, help="chain gains [dB], part of the key (hardware: RX gain, TX gain (USRP) / attenuation "
                        "(Pluto) to set; the key stores the per-chain values the front end reports)")
    own('channels ris clutter')(p).add_argument("--n-slots", type=int, default=None, help="number of RIS patterns / frames (channels, ris)")
    own('channels ris')(p).add_argument("--n-elements", type=int, default=None, help="RIS elements N (channels, ris)")
    own('chains')(p).add_argument("--n-chains", type=int, default=None, help="chains to calibrate (chains)")
    own('chains')(p).add_argument("--side", choices=("rx", "tx"), default="rx",
                   help="chains: RX chains from a splitter, or TX chains one at a time into RX0 [default: rx]")
    own('channels')(p).add_argument("--codebook", choices=("hadamard", "onoff", "dft", "random"), default=None,
                   help="RIS sweep design (channels) [default: hadamard]")
    own('ris')(p).add_argument("--board-out", default=None, metavar="FILE",
                   help="ris: also write a ris_driver board file (BoardSpec JSON) with the measured table")
    own('chains')(p).add_argument("--impair-seed", type=int, default=None, metavar="N",
                   help="chains (sim): measure the hidden chains of the simulated bench `run --impair-seed N` "
                        "(integer delays, key hardware id sim://chains?impair_seed=N)")
    own('channels')(p).add_argument("--scenario", default=None, metavar="NAME|FILE",
                   help="channels (sim): estimate the user channels of this paper-A scenario's realisation "
                        "--seed (needs --channels-out)")
    own('channels')(p).add_argument("--channels-out", default=None, metavar="FILE.npz",
                   help="channels: write the ESTIMATED paper-A channels (ChannelsA file) for "
                        "`isac-testbed design --channels FILE.npz`")
    own('channels')(p).add_argument("--truth-out", default=None, metavar="FILE.npz",
                   help="channels (sim): also write the hidden true channels (for `run --world-channels`)")
    hw = p.add_argument_group("hardware (--backend pluto|uhd)")
    own(None)(hw).add_argument("--n-tx", type=int, default=None, help="TX chains in use [default: 2 pluto, 1 uhd; clutter: "
                                                           "the design's M]")
    own(None)(hw).add_argument("--n-rx", type=int, default=None, help="RX chains in use [default: 2 pluto, 1 uhd]")
    own('channels ris clutter')(hw).add_argument("--settle", type=int, default=256, metavar="SAMPLES",
                    help="samples dropped after each verified RIS apply (switching transient) [default: %(default)s]")
    own('chains channels ris')(hw).add_argument("--reps", type=int, default=4, help="pilot block repetitions per capture (chains: one-period captures averaged) "
                                                      "[default: %(default)s]")
    own('channels ris')(hw).add_argument("--n-pilots", type=int, default=None, help="pilot length T_p per TX block [default: 8]")
    own('ris')(hw).add_argument("--positions", type=int, default=None, metavar="K",
                    help="ris: receiver positions (angles sin θ_k = 2k/K − 1 + 1/K) [default: N]")
    own('ris')(hw).add_argument("--wait-s", type=float, default=None, metavar="S",
                    help="ris: seconds to wait between positions while the receive antenna is moved "
                         "(required with K > 1 unless --position-file)")
    own('ris')(hw).add_argument("--position-file", default=None, metavar="FILE.npz",
                    help="ris: estimate offline from pre-recorded position captures (Y (T, K), patterns, Q; "
                         "the <out>_positions.npz a hardware run writes)")
    own('ris')(hw).add_argument("--resume", action="store_true",
                    help="ris: continue an interrupted position sweep from <out>_positions.npz")
    own('clutter')(hw).add_argument("--design", default=None, metavar="FILE",
                    help="clutter: design file whose waveform X (M, L) is transmitted (isac-testbed design)")
    p.set_defaults(**defaults)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``calibrate`` sub-parser (with sub-commands chains|channels|ris|clutter)."""
    p = subparsers.add_parser("calibrate", help="bench calibration: chains, channels, RIS table, clutter",
                              description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="what", metavar="{" + ",".join(WHATS) + "}")
    sub.required = True
    for name, helptext in WHATS.items():
        sp = sub.add_parser(name, help=helptext, description=helptext)
        _options(sp, name)
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
    from calibration.sigmf_io import pattern_hex, write_recording
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


def _run_hardware(args, progress_enabled: bool = True):
    """Hardware paths: chains | channels | ris | clutter through a FrontEnd (Pluto or USRP)."""
    from calibration import frontend
    from calibration.hw_measure import open_ris_checked
    n_tx_default = 2 if args.backend == "pluto" else 1
    X = None
    if args.what == "clutter":
        from calibration.hw_measure import design_waveform
        if not args.design:
            raise CalibrationError("design", "--design FILE (the waveform X (M, L) to transmit)", None)
        X = design_waveform(args.design)
        if X.ndim != 2:
            raise CalibrationError("design.X", "a 2-D waveform (M, L)", f"shape {X.shape}")
    n_tx = args.n_tx or (X.shape[0] if X is not None else n_tx_default)
    n_rx = args.n_rx or n_tx_default
    if args.what == "ris":                     # TX0 -> RIS -> RX0 at each receiver position
        n_tx, n_rx = args.n_tx or 1, args.n_rx or 1
    if args.what == "chains":                  # rx: TX0 -> splitter -> n_chains RX; tx: n_chains TX -> RX0
        C = args.n_chains or (args.n_rx if args.side == "rx" else args.n_tx) or 2
        if args.side == "rx":
            n_tx, n_rx = args.n_tx or n_tx_default, C
        else:
            n_tx, n_rx = C, args.n_rx or 1
    fe = frontend.open_frontend(args.backend, args.uri, lo_hz=args.lo_hz, fs_hz=args.fs_hz, n_tx=n_tx, n_rx=n_rx,
                                gains_db=args.gains_db)
    try:
        hw = dict(fe.ids())
        args.lo_hz, args.fs_hz = fe.lo_hz, fe.fs_hz
        args.gains_db = fe.gains_db()
        if args.what == "clutter":
            return _hw_clutter(args, fe, X, hw)
        if args.what == "chains":
            return _hw_chains(args, fe, hw, progress_enabled)
        ris = open_ris_checked(args.ris)
        try:
            from calibration.hw_measure import ris_ids
            hw.update(ris_ids(ris), ris=args.ris)
            if args.what == "channels":
                return _hw_channels(args, fe, ris, hw, progress_enabled)
            return _hw_ris(args, fe, ris, hw, progress_enabled)
        finally:
            ris.close()
    finally:
        fe.close()


def _board_n(ris, args) -> int:
    n_board = ris.info().board.n
    N = args.n_elements or n_board
    if N != n_board:
        raise CalibrationError("n-elements", f"the board's element count {n_board}", N)
    return N


def _ack_summary(acks) -> dict:
    if not acks:
        return {}
    att = [a["attempts"] for a in acks]
    dt = [a["apply_s"] for a in acks]
    return {"ris_applies": len(acks), "ris_attempts_max": int(max(att)), "ris_retries_total": int(sum(att) - len(att)),
            "ris_apply_s_mean": float(np.mean(dt)), "ris_apply_s_max": float(np.max(dt))}


def _bar(total, enabled):
    step, bar = _progress(total, enabled)
    return step, bar


def _hw_channels(args, fe, ris, hw, progress_enabled):
    from calibration.channels import RisCascadeCal
    from calibration.hw_measure import measure_channels
    N = _board_n(ris, args)
    codebook = args.codebook or "hadamard"
    cal = RisCascadeCal(n_elements=N, entry_shape=(fe.n_rx, fe.n_tx), codebook=codebook, n_slots=args.n_slots,
                        seed=args.seed)
    step, bar = _bar(cal.params["n_slots"], progress_enabled)
    try:
        run = measure_channels(fe, ris, cal, n_pilots=args.n_pilots, reps=args.reps, settle=args.settle,
                               progress=step)
    finally:
        if bar is not None:
            bar.close()
    cal.run(run.data)
    report = {"what": "channels", "backend": args.backend, "n_elements": N, "codebook": codebook,
              "n_slots": cal.params["n_slots"], "n_tx": fe.n_tx, "n_rx": fe.n_rx, "settle": args.settle}
    report.update(cal.residual or {})
    report.update(_ack_summary(run.acks))
    run.extra["patterns"] = cal.patterns()
    return cal, report, run, hw


def _hw_ris(args, fe, ris, hw, progress_enabled):
    import time as _time
    from calibration.hw_measure import measure_ris_table, position_angles_deg
    from calibration.ris_states import RisStateCal, scan_response
    N = _board_n(ris, args)
    K = args.positions or N
    if K > 1 and args.wait_s is None:
        raise CalibrationError("wait-s", f"seconds to move the receive antenna between the {K} positions "
                               "(or --positions 1 with an RX array, or --position-file)", None)
    cal = RisStateCal(n_elements=N, n_slots=args.n_slots)
    angles = position_angles_deg(K)

    def move(k):
        print(f"isac-testbed calibrate: move the receive antenna to position {k + 1}/{K} "
              f"({angles[k]:+.1f} deg from broadside); next sweep in {args.wait_s:g} s", file=sys.stderr)
        _time.sleep(float(args.wait_s))

    pos_path = _positions_path(args)
    done = _resume_positions(pos_path, cal.patterns(), K) if args.resume else None
    k0 = 0 if done is None else done.shape[1]
    if k0 < K:
        print(f"isac-testbed calibrate: position {k0 + 1}/{K} at {angles[k0]:+.1f} deg", file=sys.stderr)
    Q = scan_response(N, K)

    def save_partial(k, Y):
        _save_positions(pos_path, Y, cal.patterns(), Q, angles, hw, K)

    step, bar = _bar(cal.params["n_slots"] * (K - k0), progress_enabled)
    try:
        run = measure_ris_table(fe, ris, cal, K, move=move, n_pilots=args.n_pilots or 8, reps=args.reps,
                                settle=args.settle, progress=step, done=done, on_position=save_partial)
    finally:
        if bar is not None:
            bar.close()
    _save_positions(pos_path, run.data, cal.patterns(), Q, angles, hw, K)
    ref = _relative_table(cal, run.data, run.extra["element_response"])
    report = {"reference_gain_db": float(20 * np.log10(abs(ref))),
              "reference_phase_deg": float(np.degrees(np.angle(ref))),"what": "ris", "backend": args.backend, "n_elements": N, "n_slots": cal.params["n_slots"],
              "positions": K, "position_angles_deg": angles.tolist(), "positions_file": pos_path,
              "resumed_from_position": k0}
    report.update(cal.residual or {})
    report.update(_ack_summary(run.acks))
    run.extra["patterns"] = cal.patterns()
    return cal, report, run, hw


def _relative_table(cal, Y, Q, patterns=None) -> complex:
    """Estimate Γ relative to the mean state-0 reflection (the bench's common complex gain, chains + path,
    is unknown without a reference reflector): runs ``cal`` with Q·ref so that mean_n Γ̂[n, 0] = 1 and
    returns ref (the absolute scale the measurement saw)."""
    cal.run(Y, element_response=Q, patterns=patterns)
    ref = complex(np.mean(cal.coefs["table"][:, 0]))
    if abs(ref) == 0:
        raise CalibrationError("measurements", "a non-zero RIS response (is the RIS in the beam?)", "zero")
    cal.run(Y, element_response=np.asarray(Q) * ref, patterns=patterns)
    return ref


def _positions_path(args) -> str:
    stem = str(args.out or f"calibration_{args.what}")
    return (stem[:-5] if stem.endswith(".json") else stem) + "_positions.npz"


def _save_positions(path, Y, patterns, Q, angles, hw, K) -> str:
    """The measured position sweep so far (``--position-file`` re-estimates it offline, ``--resume``
    continues it); hardware ids as hw_* strings; ``n_positions`` = the planned K."""
    tmp = path + ".tmp.npz"
    np.savez(tmp, Y=Y, patterns=patterns, element_response=Q[: Y.shape[1]], angles_deg=angles[: Y.shape[1]],
             n_positions=np.array(K), **{"hw_" + k: np.array(str(v)) for k, v in hw.items()})
    import os
    os.replace(tmp, path)
    return path


def _resume_positions(path, patterns, K):
    """Responses (T, k0) of an interrupted sweep in ``path`` (None when there is none)."""
    import os
    if not os.path.exists(path):
        return None
    with np.load(path, allow_pickle=False) as z:
        Y, P, K_file = z["Y"], z["patterns"], int(z["n_positions"]) if "n_positions" in z.files else -1
    if K_file != K or P.shape != patterns.shape or not np.array_equal(P, patterns):
        raise CalibrationError("resume", f"{path} from the same sweep (K={K}, same patterns)",
                               f"K={K_file}, patterns {P.shape}")
    return Y


def _ris_from_position_file(args):
    from calibration.ris_states import RisStateCal
    try:
        with np.load(args.position_file, allow_pickle=False) as z:
            Y, P, Q = z["Y"], z["patterns"].astype(np.int64), z["element_response"]
            hw_file = {k: str(z[k]) for k in z.files if k.startswith("hw_")}
    except FileNotFoundError:
        raise CalibrationError("position-file", "an existing .npz", repr(args.position_file)) from None
    except KeyError as exc:
        raise CalibrationError("position-file", "arrays Y (T, K), patterns (T, N), element_response (K, N)",
                               f"missing {exc}") from None
    N = P.shape[1]
    cal = RisStateCal(n_elements=N, n_slots=P.shape[0])
    ref = _relative_table(cal, Y, Q, P)
    report = {"reference_gain_db": float(20 * np.log10(abs(ref))),
              "reference_phase_deg": float(np.degrees(np.angle(ref))),"what": "ris", "backend": args.backend, "source": str(args.position_file), "n_elements": N,
              "n_slots": P.shape[0], "positions": Y.shape[1]}
    report.update(cal.residual or {})
    hw = {"position_file": str(args.position_file)}
    hw.update({k[3:]: v for k, v in hw_file.items()})
    return cal, report, None, hw


def _hw_clutter(args, fe, X, hw):
    from calibration.clutter import ClutterCovCal
    from calibration.hw_measure import measure_clutter
    dim = fe.n_rx * X.shape[1]
    F = args.n_slots or max(2 * dim, 64)
    run = measure_clutter(fe, X, F, settle=args.settle)
    cal = ClutterCovCal(dim=dim)
    cal.run(run.data)
    report = {"what": "clutter", "backend": args.backend, "design": str(args.design), "dim": dim,
              "n_frames": F, "n_rx": fe.n_rx, "n_tx": fe.n_tx}
    report.update(cal.residual or {})
    hw["design"] = str(args.design)
    return cal, report, run, hw


def _sigmf_hw(args, run, key_id: str) -> str | None:
    """SigMF of the raw aligned hardware captures: one capture segment per RIS pattern (and position)."""
    if not args.sigmf or run is None or run.raw is None:
        return None
    from calibration.sigmf_io import pattern_hex, write_recording
    extra = {"calibration_id": key_id, "backend": args.backend, "what": args.what}
    raw = np.asarray(run.raw)
    if args.what == "chains":                       # (reps, n_rx used, P) -> (reps*P, n_rx), one segment per capture
        reps, R, P = raw.shape
        extra.update({"side": args.side, "n_chains": int(run.data.shape[0]), "slot_len": int(run.data.shape[1]),
                      "period": int(P), "tx_chain": int(run.extra["tx_chain"]),
                      "rx_chain": int(run.extra["rx_chain"])})
        segs = [(k * P, {"ris:capture": k, "ris:lag_undone": int(run.extra["shifts"][k])}) for k in range(reps)]
        return write_recording(args.sigmf, f"calibrate_{args.what}", raw.transpose(0, 2, 1).reshape(reps * P, R),
                               sample_rate=args.fs_hz, frequency=args.lo_hz, global_extra=extra, segments=segs)
    if args.what == "clutter":                      # (n_rx, F, L) -> (F*L, n_rx)
        samples = raw.reshape(raw.shape[0], -1).T
        return write_recording(args.sigmf, f"calibrate_{args.what}", samples, sample_rate=args.fs_hz,
                               frequency=args.lo_hz, global_extra=extra)
    P = run.extra["patterns"]
    if args.what == "ris":                          # (T, K, L) -> (K*T*L, 1), position-major
        T, K, L = raw.shape
        k0 = int(run.extra.get("first_position", 0))
        samples = raw.transpose(1, 0, 2).reshape(-1, 1)
        segs = [((k * T + t) * L, {"ris:pattern_hex": pattern_hex(P[t]), "ris:position": k0 + k,
                                   **_ack_meta(run.acks, k * T + t)}) for k in range(K) for t in range(T)]
    else:                                           # (T, n_rx, L) -> (T*L, n_rx)
        T, R, L = raw.shape
        samples = raw.transpose(0, 2, 1).reshape(T * L, R)
        segs = [(t * L, {"ris:pattern_hex": pattern_hex(P[t]), **_ack_meta(run.acks, t)}) for t in range(T)]
    return write_recording(args.sigmf, f"calibrate_{args.what}", samples, sample_rate=args.fs_hz,
                           frequency=args.lo_hz, global_extra=extra, segments=segs)


def _ack_meta(acks, i) -> dict:
    if i >= len(acks):
        return {}
    a = acks[i]
    return {"ris:ack_attempts": a["attempts"], "ris:apply_s": a["apply_s"]}


def _hw_chains(args, fe, hw, progress_enabled):
    """``calibrate chains --backend pluto|uhd``: :func:`hw_measure.measure_chains` through the front end."""
    from calibration.chains import ChainCal
    from calibration.hw_measure import measure_chains
    C = fe.n_rx if args.side == "rx" else fe.n_tx
    cal = ChainCal(n_chains=C, side=args.side, reference=0)
    step, bar = _bar(args.reps, progress_enabled)
    try:
        run = measure_chains(fe, cal, reps=args.reps, settle=0, progress=step)
    finally:
        if bar is not None:
            bar.close()
    cal.run(run.data)
    g = cal.coefs["gain"]
    report = {"what": "chains", "backend": args.backend, "uri": hw.get("sdr"), "side": args.side, "n_chains": C,
              "n_tx": fe.n_tx, "n_rx": fe.n_rx, "reps": args.reps, "reference_chain": 0,
              "phase_deg": np.degrees(np.angle(g)).tolist(), "gain_db": (20 * np.log10(np.abs(g))).tolist(),
              "delay_samples": cal.coefs["delay"].tolist()}
    report.update(cal.residual or {})
    return cal, report, run, hw


def _sim_bench_chains(args):
    """Calibrate the hidden chains of the simulated bench ``run --impair-seed N`` (ChainCal, sim bench)."""
    from calibration.chains import ChainCal, compare_chains
    from calibration.sim_bench import measure_chains
    from calibration.use import bench_chain_truth, sim_sdr_id
    n = args.n_chains or 6
    truth = bench_chain_truth(args.impair_seed, n, args.side)
    cal = ChainCal(n_chains=n, side=args.side)
    snr = 20.0 if args.snr_db is None else float(args.snr_db)
    run = measure_chains(cal, truth, snr, np.random.default_rng([int(args.impair_seed), int(args.seed), 2]))
    cal.run(run.data)
    report = {"what": "chains", "side": args.side, "impair_seed": args.impair_seed, "snr_db": snr, "n_chains": n}
    report.update(compare_chains(cal.coefs, truth))
    hw = {"backend": "sim", "sdr": sim_sdr_id(args.impair_seed), "seed": args.seed, "ris": args.ris or "sim://"}
    return cal, report, run, hw


def _paper_a_channels(args) -> int:
    """``calibrate channels --scenario paper-a --channels-out FILE``: estimated paper-A channels file."""
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.scenario import load_scenario
    from calibration.use import estimate_paper_a_channels
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


def _check_outputs(args) -> None:
    """Every file this run will write is checked BEFORE the measurement: an existing one is refused without
    ``--force`` (one line naming the option), an unwritable place is refused too."""
    from calibration.store import _stem
    from isac_opt.safeio import check_output_file
    stem = _stem(args.out or f"calibration_{args.what}")
    channels_only = args.what == "channels" and (args.channels_out or args.scenario)
    if not channels_only:
        for suffix in (".json", ".npz"):
            check_output_file(stem.with_suffix(suffix), force=args.force, what="--out")
    for opt in ("channels_out", "truth_out", "board_out"):
        if getattr(args, opt, None):
            check_output_file(getattr(args, opt), force=args.force, what="--" + opt.replace("_", "-"))


def handler(args) -> int:
    """Run one calibration; returns the exit code (0 ok, 2 bad input / no hardware)."""
    from calibration import store
    from calibration.sim_bench import calibrate_sim
    _check_outputs(args)
    try:
        if args.what == "channels" and (args.channels_out or args.scenario):
            return _paper_a_channels(args)
        if args.what == "ris" and args.position_file:
            bar = None
            step = lambda msg: None  # noqa: E731
            cal, report, run, hw = _ris_from_position_file(args)
        elif args.backend == "sim" and args.what == "chains" and args.impair_seed is not None:
            bar = None
            step = lambda msg: None  # noqa: E731
            cal, report, run, hw = _sim_bench_chains(args)
        elif args.backend == "sim":
            step, bar = _progress(3, not args.json or sys.stderr.isatty())
            kw = {"n_slots": args.n_slots, "n_elements": args.n_elements, "n_chains": args.n_chains,
                  "codebook": args.codebook}
            kw = {k: v for k, v in kw.items() if v is not None}
            cal, report, run = calibrate_sim(args.what, seed=args.seed, snr_db=args.snr_db, progress=step, **kw)
            hw = {"backend": "sim", "seed": args.seed, "ris": args.ris or "sim://"}
        else:
            bar = None
            step = lambda msg: None  # noqa: E731
            cal, report, run, hw = _run_hardware(args, not args.json or sys.stderr.isatty())
        key = store.make_key(hardware_ids=hw, lo_hz=args.lo_hz, fs_hz=args.fs_hz, gains_db=args.gains_db)
        out = args.out or f"calibration_{args.what}"
        path = cal.save(out, key=key, meta={"report": report})
        step("saved")
        if bar is not None:
            bar.close()
        doc_id = json.loads(open(path).read())["id"]
        report["file"] = path
        report["calibration_id"] = doc_id
        if args.backend != "sim":
            sig = _sigmf_hw(args, run, doc_id)
            if sig:
                report["sigmf"] = sig
        elif run is not None:
            sig = _sigmf(args, cal, run, doc_id)
            if sig:
                report["sigmf"] = sig
        if args.what == "ris" and args.board_out:
            report["board_file"] = _write_board(args.board_out, cal.coefs["table"])
    except KeyboardInterrupt:
        hint = " (ris: --resume continues the position sweep)" if args.what == "ris" else ""
        raise CalibrationError(f"interrupted{hint}") from None
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(repr(cal))
        for k, v in report.items():
            print(f"  {k:<26} {v:.4g}" if isinstance(v, float) else f"  {k:<26} {v}")
    return 0


def main(argv=None) -> int:
    """Stand-alone entry: ``python -m isac_testbed.calibrate chains --backend sim --json``."""
    from .cli import main as cli_main
    argv = list(sys.argv[1:] if argv is None else argv)
    return cli_main(argv if argv[:1] == ["calibrate"] else ["calibrate"] + argv)


if __name__ == "__main__":
    sys.exit(main())
