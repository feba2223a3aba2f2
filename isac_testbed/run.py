"""``isac-testbed run``: design → RIS driver → bench flowgraph → MEASURED vs DESIGNED report.

The run orchestration of the application layer (:data:`isac_testbed.cli.COMMANDS`): the design is loaded
(or made and certified) once, handed to the RIS driver and to the flowgraph (:mod:`blocks.pipeline`),
and the report is built from what the blocks measured.
"""
from __future__ import annotations

import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from isac_opt.errors import IsacError



def add_parser(subparsers):
    p = subparsers.add_parser(
        "run", help="run the simulated (or hardware) bench flowgraph and report measured vs designed",
        description="Design the scenario (best available method unless --design/--method), apply the RIS "
                    "state through the RIS driver (simulator by default), run the bench flowgraph for N "
                    "frames (target present in even frames, absent in odd ones) and report MEASURED vs "
                    "DESIGNED radar output SINR, Pd at the set Pfa, per-user SER and CI margins.")
    p.add_argument("--scenario", default="paper-a", help="built-in name or TOML file (paper-A kind) [paper-a]")
    p.add_argument("--design", default=None, help="design file (.npz) instead of designing now")
    p.add_argument("--method", default=None, help="design method (default: the best available)")
    p.add_argument("--frames", type=int, default=2000, help="frames (pulses) to run [2000]")
    p.add_argument("--backend", choices=("sim", "pluto", "uhd"), default="sim", help="front end [sim]")
    p.add_argument("--ris", default="sim://bench?bits=4",
                   help="RIS: a ris_driver URL (sim://NAME?bits=B..., serial://..., zmq://...) or 'ideal' "
                        "(the design's continuous φ, no driver) [sim://bench?bits=4]")
    p.add_argument("--no-refit", dest="refit", action="store_false",
                   help="keep the design's waveform when the RIS board realises a quantised state "
                        "(default: re-optimise the waveform for the state actually applied)")
    p.add_argument("--pfa", type=float, default=1e-3, help="false-alarm probability of the detector [1e-3]")
    p.add_argument("--user-noise-db", type=float, default=0.0,
                   help="extra user noise [dB] over the scenario's σ_k² (makes SER measurable) [0]")
    p.add_argument("--seed", type=int, default=0, help="design and channel seed [0]")
    p.add_argument("--record", default=None, metavar="DIR", help="write the receive streams as SigMF into DIR "
                   "(a new or empty directory unless --force)")
    p.add_argument("--force", action="store_true", help="write --record into a non-empty directory")
    p.add_argument("--png", default=None, metavar="FILE", help="write constellations/histograms/ROC to FILE")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--uri", default="ip:192.168.2.1", help="Pluto URI (backend pluto)")
    p.add_argument("--dev-args", default="", help="UHD device args (backend uhd)")
    p.add_argument("--clock-source", default="", choices=["", "internal", "external", "gpsdo"],
                   help="uhd: 10 MHz reference of every motherboard [device default]")
    p.add_argument("--time-source", default="", choices=["", "internal", "external", "gpsdo"],
                   help="uhd: PPS source of every motherboard [device default]")
    p.add_argument("--sync", default="auto", choices=["auto", "pc_clock", "pps", "unknown_pps"],
                   help="uhd: how the device time is set on all motherboards [auto: pps if --time-source "
                        "external/gpsdo, else the host clock]")
    c = p.add_argument_group("calibration (docs/calibration.md, 'Using calibrations')")
    c.add_argument("--tx-cal", default=None, metavar="FILE",
                   help="TX ChainCal file (calibrate chains --side tx): the source pre-distorts the chains")
    c.add_argument("--rx-cal", default=None, metavar="FILE",
                   help="RX ChainCal file (calibrate chains --side rx): the detector corrects the radar streams")
    c.add_argument("--impair-seed", type=int, default=None, metavar="N",
                   help="sim: the channel imposes hidden random TX/RX chain gains, phases and integer delays "
                        "(calibration.use.bench_chain_truth(N)); the bench's hardware id becomes "
                        "sim://chains?impair_seed=N")
    c.add_argument("--world-channels", default=None, metavar="FILE",
                   help="sim: channels file (.npz) the simulated channel emulates instead of the design's own "
                        "(e.g. the true channels when the design came from estimated ones)")
    c.add_argument("--fs-hz", type=float, default=2e6, help="sample rate [Hz] (hardware; calibration key) [2e6]")
    c.add_argument("--lo-hz", type=float, default=5.8e9, help="carrier [Hz] (hardware; calibration key) [5.8e9]")
    c.add_argument("--gains-db", type=float, nargs="*", default=None,
                   help="chain gains [dB] of the calibration key (checked only when given)")
    p.set_defaults(func=handler)
    return p


def _err(msg: str) -> int:
    raise IsacError(msg)


def _with_n(url: str, n: int) -> str:
    if not url.startswith("sim://") or "n=" in url or "rows=" in url:
        return url
    return url + ("&" if "?" in url else "?") + f"n={n}"


def _calibration_setup(args, d, work: Path) -> tuple[dict, dict]:
    """Pipeline keywords and report entries for --tx-cal/--rx-cal/--impair-seed/--world-channels."""
    kw, rep = {}, {}
    impair = getattr(args, "impair_seed", None)
    world = getattr(args, "world_channels", None)
    if args.backend != "sim" and (impair is not None or world):
        raise IsacError("--impair-seed / --world-channels: only with --backend sim")
    if impair is not None:
        from calibration.use import bench_chain_truth, emulator_impairments
        M = d.scenario.M
        kw["impairments"] = emulator_impairments(bench_chain_truth(impair, M, "tx"), bench_chain_truth(impair, M, "rx"))
        rep["impair_seed"] = int(impair)
    if world:
        import dataclasses
        from isac_opt.bench.stap import filter_stats
        from isac_opt.paper_a.channels import ChannelsA
        ch = ChannelsA.load(world, d.scenario)
        ch = dataclasses.replace(ch, S=d.channels.S)          # the symbols are the design's data
        wd = dataclasses.replace(d, channels=ch)
        wpath = work / "world_design.npz"
        wd.save(wpath)
        kw["world"] = str(wpath)
        rep.update(world_channels=str(world), sinr_world_predicted_db=filter_stats(wd)["sinr_db"])
    if getattr(args, "tx_cal", None) or getattr(args, "rx_cal", None):
        from calibration.use import bench_key, sim_sdr_id
        sdr = (sim_sdr_id(impair) if args.backend == "sim" else
               args.uri if args.backend == "pluto" else args.dev_args)
        key = bench_key(sdr=sdr, fs_hz=args.fs_hz, lo_hz=args.lo_hz, gains_db=args.gains_db)
        kw.update(tx_cal=args.tx_cal or "", rx_cal=args.rx_cal or "", cal_key=key)
        rep.update(tx_cal=args.tx_cal, rx_cal=args.rx_cal)
    return kw, rep


def run_bench(args, work: Path | None = None, stopper=None) -> tuple[dict, dict, object, object]:
    """Do the work of ``run``; returns (report, detector results, receiver core, design).

    ``work``: directory for the intermediate design files (default: ``--record`` or a new temporary one,
    which the caller removes). ``stopper``: a :class:`blocks._interrupt.StopOnSignal` the flowgraph is
    attached to; when it caught a signal the report is of the frames processed and has ``interrupted``.
    """
    from isac_opt import __version__
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.scenario import load_scenario
    from isac_opt.designfile import file_hash, load_design
    from isac_opt.registry import get_method
    from isac_opt.bench.report import build_report
    from blocks.pipeline import sim_pipeline

    if work is None:
        work = Path(args.record) if args.record else Path(tempfile.mkdtemp(prefix="risisac_run_"))
    work.mkdir(parents=True, exist_ok=True)
    if args.design:
        design_path = Path(args.design)
        d = load_design(design_path)
    else:
        scn = load_scenario(args.scenario)
        if not isinstance(scn, ScenarioA):
            raise IsacError(f"scenario {args.scenario!r} is of kind {scn.kind!r}; `run` runs paper-A designs "
                             f"(paper B: grc/flowgraphs/risisac_headless_sim_b.grc, or "
                             f"`python -m isac_opt.bench.channel_b DESIGN`)")
        method = get_method(args.method, "paper-a")
        d = method.run(scn, args.seed)
        design_path = work / "design.npz"
        d.save(design_path)
    if not hasattr(d, "X") or not isinstance(d.scenario, ScenarioA):
        raise IsacError("`run` runs paper-A designs only (paper B: grc/flowgraphs/risisac_headless_sim_b.grc, "
                         "or `python -m isac_opt.bench.channel_b DESIGN`)")
    N = d.scenario.N
    ris_state = {"url": "ideal"}
    if args.ris == "ideal":
        phi_applied, ris_for_channel = d.phi, "design"
    else:
        from ris_driver import coefficients, open_ris, quantize
        url = _with_n(args.ris, N)
        dev = open_ris(url)
        board = dev.info().board
        if board.n != N:
            raise IsacError(f"RIS {url}: board has {board.n} elements, the design has N = {N}")
        ack = dev.apply(quantize(d.phi, board))
        phi_applied = coefficients(ack.pattern, board)
        dev.close()
        ris_for_channel = url if url.startswith("sim://") else "design"
        if not url.startswith("sim://"):
            phi_applied = d.phi if args.backend == "sim" else phi_applied
        ris_state = {"url": url, "t_ack_s": ack.t_ack, "attempts": ack.attempts,
                     "pattern": list(ack.pattern.phase)}
        if args.refit and np.max(np.abs(phi_applied - d.phi)) > 1e-9:
            # the board realised a quantised state: re-optimise the waveform for it, or the users'
            # CI margins (which ride on the RIS-cascaded links) can collapse
            from isac_opt.paper_a.detect.methods import refit_waveform
            d = refit_waveform(d, phi_applied)
            design_path = work / "design_refit.npz"
            d.save(design_path)
            ris_state["waveform_refit"] = True
    record = (work / "radar.sigmf-data", work / "users.sigmf-data") if args.record else None
    fe_kw = {"uri": args.uri, "dev_args": args.dev_args, "samp_rate": args.fs_hz, "center_freq": args.lo_hz} \
        if args.backend != "sim" else {}
    if args.backend == "uhd":
        fe_kw.update(clock_source=args.clock_source, time_source=args.time_source, sync=args.sync)
    cal_kw, cal_rep = _calibration_setup(args, d, work)
    tb = sim_pipeline(str(design_path), args.frames, seed=args.seed, pfa=args.pfa, backend=args.backend,
                      ris=ris_for_channel, user_noise_offset_db=args.user_noise_db, record=record, **cal_kw,
                      **fe_kw)
    tb.det.core.set_phi(phi_applied)        # ε0 of the state really applied
    if stopper is not None:
        stopper.attach(tb)
    from blocks._record import utc_iso
    start_utc = utc_iso()                   # capture start (SigMF core:datetime), before the streams run
    t = time.perf_counter()
    tb.run()
    elapsed = time.perf_counter() - t
    if stopper is not None:
        stopper.attach(None)
    det = tb.det.results()
    interrupted = stopper is not None and stopper.signum is not None
    done = int(det["frame"].size)           # frames the detector completed, not the frames asked for
    try:
        rep = build_report(d, det, tb.rx.core, pfa=args.pfa, phi_applied=phi_applied,
                           user_noise_offset_db=args.user_noise_db)
    except (ValueError, IndexError, ZeroDivisionError, KeyError):
        if not interrupted:
            raise
        rep = {"frames": done}               # cut short before any statistics could be formed
    F = tb.src.F
    rep.update(backend=args.backend, ris=ris_state["url"], design_file=str(design_path),
               design_hash=file_hash(design_path), flowgraph_s=elapsed, frames_requested=int(args.frames),
               frames_processed=done, interrupted=bool(interrupted),
               samples_per_s=(done * F * d.scenario.M) / elapsed if elapsed > 0 else float("nan"))
    if interrupted:
        rep["signal"] = stopper.name
    rep.update(cal_rep)
    if getattr(tb.fe, "start_report", None):
        rep["uhd_start"] = tb.fe.start_report      # motherboards, sync, sources, start margin [s]
    if record is not None:
        from blocks._record import finish_recording
        extra = {"method": d.method, "seed": args.seed, "scenario": d.scenario.to_dict(), "ris_state": ris_state,
                 "ris_coefficients": phi_applied, "software_version": __version__,
                 "frames_requested": int(args.frames), "interrupted": bool(interrupted)}
        rep["sigmf"] = finish_recording(record, design=d, design_path=design_path, work=work, frames=done,
                                        frame_len=F, det=det, backend=args.backend, fs_hz=args.fs_hz,
                                        lo_hz=args.lo_hz, start_utc=start_utc, extra=extra)
    return rep, det, tb.rx.core, d


def handler(args) -> int:
    from gnuradio import gr
    from isac_opt.bench.report import format_text, plot_report
    gr.logging().set_default_level(gr.log_levels.warn)      # no buffer-size info lines in the report
    if args.frames < 2:
        return _err(f"--frames: expected >= 2 (frames alternate target present/absent), got {args.frames}")
    from blocks._interrupt import RunInterrupted, StopOnSignal
    from isac_opt.safeio import check_output_dir, check_output_file
    tmp = None
    try:
        if args.record:
            check_output_dir(args.record, force=args.force, what="--record")
        if args.png:
            check_output_file(args.png, force=True, what="--png")
        with StopOnSignal() as stop:
            if not args.record:
                tmp = Path(tempfile.mkdtemp(prefix="risisac_run_"))
            rep, det, rx, d = run_bench(args, tmp, stop)
            if tmp is not None and str(rep.get("design_file", "")).startswith(str(tmp)):
                rep["design_file"] = "(temporary; --record DIR keeps it)"
            if args.png and "sinr_designed_db" in rep:
                plot_report(args.png, rep, det, rx)
                rep["png"] = str(args.png)
    except RunInterrupted as e:
        print(f"isac-testbed run: error: interrupted by {e} outside the flowgraph (setting up or reporting); "
              f"no report", file=sys.stderr)
        return 128 + e.signum
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)       # every run used to leave /tmp/risisac_run_* behind
    if args.json:
        clean = lambda v: (None if isinstance(v, float) and not math.isfinite(v) else
                           [clean(x) for x in v] if isinstance(v, (list, tuple)) else
                           {k: clean(x) for k, x in v.items()} if isinstance(v, dict) else
                           v.item() if isinstance(v, np.generic) else v)
        print(json.dumps(clean(rep)))
    elif "sinr_designed_db" not in rep:         # interrupted before any statistics
        print(f"run: {rep['frames_processed']} frames processed; no statistics")
    else:
        print(format_text(rep))
        if "sinr_world_predicted_db" in rep:
            print(f"world channels {rep['world_channels']}: this design's SINR in the true world "
                  f"{rep['sinr_world_predicted_db']:.2f} dB (no chain errors)")
        if rep.get("impair_seed") is not None or rep.get("tx_cal") or rep.get("rx_cal"):
            print(f"chains: impair seed {rep.get('impair_seed')}, tx cal {rep.get('tx_cal')}, "
                  f"rx cal {rep.get('rx_cal')}")
        print(f"flowgraph: {rep['flowgraph_s']:.2f} s, {rep['samples_per_s'] / 1e6:.2f} MS/s aggregate; "
              f"design {rep['design_file']} (sha256 {rep['design_hash'][:12]}); RIS {rep['ris']}")
        if "sigmf" in rep:
            print("recorded: " + ", ".join(rep["sigmf"]))
        if "png" in rep:
            print(f"plot: {rep['png']}")
    if rep.get("interrupted"):
        print(f"isac-testbed run: error: interrupted by {rep.get('signal')} after {rep['frames_processed']} of "
              f"{rep['frames_requested']} frames; the report covers the frames processed", file=sys.stderr)
        import signal
        return 128 + int(getattr(signal, str(rep.get("signal")), signal.SIGINT))
    return 0
