"""``isac-testbed encode`` / ``decode`` — the offline mode of the live link [issue 13 item 4; docs/link.md].

``encode`` designs a whole payload ahead (per-frame SLP designs, resumable) into a SigMF transmit file that a
front end plays; ``--simulate-capture DIR`` plays it through paper A's simulated channel into a SigMF capture.
``decode`` turns such a capture back into bytes per user (receivers that do not know the symbols,
CRC-checked packets) and a report (BER/PER against a reference payload, CI, radar over the varying
waveforms). Pure parts: :mod:`isac_opt.link.offline`, :mod:`isac_opt.link.radar_stats`.

Files (SigMF 1.2, explicit little-endian ``cf32_le``):

* transmit ``STEM.sigmf-data/-meta``: M interleaved antenna streams, frames of F = L + gap samples (L designed
  slots then gap zeros), one annotation per frame (``isac:frame_id``, ``isac:design_id``, ``isac:sinr_db``,
  ``isac:min_margin``, ``isac:ci_ok``); global: sample rate, frequency (capture segment), scenario, seed,
  payload SHA-256, settings and the resume key. ``STEM.design.npz``: the link state (channels, φ, frame 0)
  as a design file, for the front-end blocks that take one.
* capture ``DIR/users.sigmf-*`` (K streams, units of σ_k) and ``DIR/radar.sigmf-*`` (M streams, units of
  ξ_z), one annotation per frame with ``isac:target_present``; global ``isac:tx_key`` names the transmission.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import sys
from pathlib import Path

import numpy as np

from isac_opt.errors import UserError

DATATYPE = "cf32_le"
EXT_VERSION = "0.3.0"


# ------------------------------------------------------------------------------------------------------
# payloads
def read_payloads(spec: str, K: int, n_bytes: int, seed: int, what: str = "--payload") -> tuple[list[bytes], str]:
    """'random' (seeded, as ``isac-testbed link``), one FILE for every user, or K comma-separated files;
    returns the payloads and their kind ("random" | "files")."""
    from isac_opt.link.packets import load_payloads
    return load_payloads(spec, K, n_bytes, seed, option=what), ("random" if spec == "random" else "files")


# ------------------------------------------------------------------------------------------------------
# SigMF
def stem_of(path) -> Path:
    s = str(path)
    for ext in (".sigmf-meta", ".sigmf-data", ".sigmf"):
        if s.endswith(ext):
            return Path(s[: -len(ext)])
    return Path(s)


def _extensions():
    return [{"name": "isac", "version": EXT_VERSION, "optional": True}]


def write_sigmf(stem: Path, data: np.ndarray, global_: dict, captures: list, annotations: list) -> Path:
    """Write ``stem.sigmf-data`` (explicit little-endian complex64, channels interleaved) and
    ``stem.sigmf-meta`` atomically; the metadata is validated with the ``sigmf`` package first."""
    import hashlib
    import sigmf
    from sigmf.validate import validate
    from isac_opt.safeio import atomic_output
    raw = np.ascontiguousarray(data, dtype="<c8").tobytes()
    g = {"core:datatype": DATATYPE, "core:version": sigmf.__specification__,
         "core:num_channels": int(data.shape[1]), "core:sha512": hashlib.sha512(raw).hexdigest(),
         "core:extensions": _extensions()}
    g.update(global_)
    meta = {"global": g, "captures": captures, "annotations": annotations}
    meta = json.loads(json.dumps(meta, allow_nan=False))
    validate(meta)
    with atomic_output(Path(str(stem) + ".sigmf-data")) as t:
        t.write_bytes(raw)
    with atomic_output(Path(str(stem) + ".sigmf-meta")) as t:
        t.write_text(json.dumps(meta, indent=1))
    return Path(str(stem) + ".sigmf-meta")


def read_sigmf(path, what: str, channels: int | None = None) -> tuple[dict, np.ndarray]:
    """Read and check one recording → (metadata dict, samples (n, C) complex64 as a read-only map).

    One-line UserError naming the field for: missing files, metadata that does not parse or fails the
    SigMF schema, a datatype other than ``cf32_le``, a channel count other than ``channels``, a data file whose
    size is not a whole number of samples or whose SHA-512 is not the recorded one.
    """
    import hashlib
    from sigmf.validate import validate
    stem = stem_of(path)
    mp, dp = Path(str(stem) + ".sigmf-meta"), Path(str(stem) + ".sigmf-data")
    if not mp.is_file():
        raise UserError(f"{what}: {mp}: no such SigMF metadata file")
    if not dp.is_file():
        raise UserError(f"{what}: {dp}: no such SigMF data file")
    try:
        meta = json.loads(mp.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{what}: {mp}: not readable JSON ({type(e).__name__})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("global"), dict):
        raise UserError(f"{what}: {mp}: expected a SigMF metadata object with a 'global' object")
    try:
        validate(meta)
    except Exception as e:      # jsonschema / sigmf errors: name the failing part in one line
        msg = str(getattr(e, "message", e)).splitlines()[0][:160]
        raise UserError(f"{what}: {mp}: not valid SigMF metadata ({msg})") from None
    g = meta["global"]
    dt = g.get("core:datatype")
    if dt != DATATYPE:
        raise UserError(f"{what}: {mp}: core:datatype: expected '{DATATYPE}' (little-endian complex float32), got {dt!r}")
    nch = int(g.get("core:num_channels", 1))
    if channels is not None and nch != channels:
        raise UserError(f"{what}: {mp}: core:num_channels: expected {channels}, got {nch}")
    size = dp.stat().st_size
    if size % (8 * nch):
        raise UserError(f"{what}: {dp}: size {size} bytes is not a whole number of {nch}-channel cf32 samples")
    want = g.get("core:sha512")
    if want is not None:
        h = hashlib.sha512()
        with open(dp, "rb") as f:
            for blk in iter(lambda: f.read(1 << 22), b""):
                h.update(blk)
        if h.hexdigest() != want:
            raise UserError(f"{what}: {dp}: core:sha512: the data file does not match its metadata (changed or truncated)")
    x = np.memmap(dp, dtype="<c8", mode="r").reshape(-1, nch) if size else np.zeros((0, nch), "<c8")
    return meta, x


def _need(g: dict, key: str, types, where: str):
    """Metadata field ``key`` of type ``types`` (bool is not an int here), or a one-line UserError naming it."""
    v = g.get(key)
    if v is None or not isinstance(v, types) or (isinstance(v, bool) and types in (int, float, (int, float))):
        raise UserError(f"{where}: {key}: missing or of the wrong type in the metadata")
    return v


def _scenario_of(g: dict, where: str):
    from isac_opt.paper_a.scenario import ScenarioA
    sd = _need(g, "isac:scenario", dict, where)
    try:
        return ScenarioA.from_dict(sd)
    except UserError as e:
        raise UserError(f"{where}: isac:scenario: {e}") from None
    except (TypeError, ValueError) as e:
        raise UserError(f"{where}: isac:scenario: not a paper-A scenario ({e})") from None


# ------------------------------------------------------------------------------------------------------
# encode
def _partial_dir(stem: Path, key_digest: str) -> Path:
    return Path(str(stem) + ".partial") / key_digest[:16]


def encode(scn, payloads: list[bytes], stem, *, seed: int = 0, settings=None, rate: float = 100e3,
           frequency: float | None = None, backend: str = "sim", frames: int | None = None,
           payload_kind: str = "files", force: bool = False, progress=None, software: dict | None = None,
           warn=None) -> dict:
    """Design ``payloads`` (one per user) into the transmit recording ``stem``; returns a summary dict.

    Resumable: chunks of ``settings.batch`` designed frames are kept in ``<stem>.partial/<key>/`` (key =
    scenario, seed, payload hashes, settings, software) and removed after the recording is written.
    """
    from isac_opt.bench.framing import design_id, frontend_scale
    from isac_opt.link.offline import (DesignChunks, EncodeSettings, design_frames, encode_key, frame_len,
                                       key_digest, link_state, payload_digest, plan_symbols, scenario_digest,
                                       tx_samples)
    from isac_opt.safeio import check_output_file
    settings = (settings or EncodeSettings()).check()
    stem = stem_of(stem)
    outs = [Path(str(stem) + e) for e in (".sigmf-data", ".sigmf-meta", ".design.npz")]
    for p in outs:
        check_output_file(p, force=force, what="--out")
    if not rate > 0:
        raise UserError(f"--rate: expected a sample rate > 0, got {rate}")
    try:
        scale = frontend_scale(backend, scn.amp)
    except ValueError as e:
        raise UserError(f"--backend: {e}") from None
    sym, n_packets = plan_symbols(scn, payloads, settings.chunk, frames)
    key = encode_key(scn, seed, payloads, settings, symbols=sym, software=software)
    kd = key_digest(key)
    ch, phi = link_state(scn, seed)
    store = DesignChunks(_partial_dir(stem, kd), key, warn=warn)
    des = design_frames(scn, ch, phi, sym, settings, store, progress=progress)
    gap, Fs = frame_len(scn)
    F = sym.shape[0]
    samples = tx_samples(des.X, gap, scale)
    ann = []
    for f in range(F):
        ann.append({"core:sample_start": f * Fs, "core:sample_count": Fs, "core:label": f"frame {f}",
                    "isac:frame_id": f, "isac:design_id": design_id(des.X[f], phi),
                    "isac:sinr_db": float(10 * np.log10(des.sinr[f])), "isac:min_margin": float(des.min_margin[f]),
                    "isac:ci_ok": bool(des.ok[f])})
    g = {"core:sample_rate": float(rate),
         "core:description": f"ISAC link transmit frames: {scn.M} antenna streams, {F} frames of {scn.L} "
                             f"per-frame SLP slots + {gap} guard zeros",
         "core:recorder": "isac-testbed encode",
         "isac:format": "transmit", "isac:scenario": scn.to_dict(), "isac:scenario_sha256": scenario_digest(scn),
         "isac:seed": int(seed), "isac:payload": payload_kind, "isac:payload_bytes": [len(p) for p in payloads],
         "isac:payload_sha256": [h for h in key["payload_sha256"]], "isac:payload_digest": payload_digest(payloads),
         "isac:packets": n_packets, "isac:chunk": settings.chunk, "isac:settings": key["settings"], "isac:key": kd,
         "isac:frames": F, "isac:frame_len": Fs, "isac:slots": scn.L, "isac:gap": gap,
         "isac:psk_order": scn.psk_order, "isac:tx_scale": float(scale), "isac:backend": backend,
         "isac:design_file": outs[2].name, "isac:ci_frames_ok": float(des.ok.mean()),
         "isac:sinr_predicted_db": float(10 * np.log10(des.sinr.mean()))}
    cap = {"core:sample_start": 0}
    if frequency is not None:
        cap["core:frequency"] = float(frequency)
    meta = write_sigmf(stem, samples, g, [cap], ann)
    _write_design_file(outs[2], scn, ch, phi, des.X[0], sym[0], seed)
    shutil.rmtree(store.dir, ignore_errors=True)
    try:
        store.dir.parent.rmdir()         # only when no other key's partial results are left
    except OSError:
        pass
    return {"tx_meta": str(meta), "frames": F, "frame_len": Fs, "samples": int(samples.shape[0]),
            "payload_bytes": [len(p) for p in payloads], "packets": n_packets, "key": kd,
            "chunks_loaded": des.chunks_loaded, "chunks_designed": des.chunks_designed,
            "design_seconds": des.design_seconds,
            "designs_per_s": des.frames_designed / des.design_seconds if des.design_seconds > 0 else None,
            "ci_frames_ok": float(des.ok.mean()), "sinr_predicted_db": g["isac:sinr_predicted_db"],
            "min_margin": float(des.min_margin.min()), "engine": des.engine_info}


def _write_design_file(path: Path, scn, ch, phi, X0, sym0, seed: int) -> None:
    """The link state as a design file (frame 0's waveform and symbols) for the blocks that take one
    (``frontend``/``ris_isac_channel``: the channels; ``frame_tagger``: L, gap)."""
    import dataclasses
    from isac_opt.ci import psk_constellation
    from isac_opt.paper_a.design import DesignA
    from isac_opt.safeio import atomic_output
    ch0 = dataclasses.replace(ch, S=psk_constellation(scn.psk_order)[sym0])
    d = DesignA.build(scn, ch0, X0, phi, "link-offline", int(seed), extra={"note": "link state of an encode run"})
    with atomic_output(path) as t:
        d.save(t)


def _open_tx(tx, out_dir, force: bool, what: str):
    """Read and check a transmit recording for playback; check the capture outputs; → (meta, x, scn, F_s)."""
    from isac_opt.safeio import check_output_file
    meta, x = read_sigmf(tx, "--tx")
    g = meta["global"]
    where = f"--tx {stem_of(tx)}.sigmf-meta"
    if g.get("isac:format") != "transmit":
        raise UserError(f"{where}: isac:format: expected 'transmit', got {g.get('isac:format')!r}")
    scn = _scenario_of(g, where)
    if x.shape[1] != scn.M:
        raise UserError(f"{where}: core:num_channels: expected M = {scn.M} of isac:scenario, got {x.shape[1]}")
    Fs = int(_need(g, "isac:frame_len", int, where))
    _need(g, "isac:seed", int, where)
    for n in ("users", "radar"):
        for e in ("data", "meta"):
            check_output_file(Path(out_dir) / f"{n}.sigmf-{e}", force=force, what=what)
    if x.shape[0] % Fs:
        raise UserError(f"{where}: the data holds {x.shape[0]} samples, not a whole number of frames of "
                        f"isac:frame_len = {Fs}")
    return meta, x, scn, Fs


def _write_capture(tx, meta: dict, out_dir, users, radar, present, extra: dict) -> dict:
    """Write ``out_dir/users|radar.sigmf-*`` of a playback of the transmit recording ``tx``."""
    g = meta["global"]
    out_dir = Path(out_dir)
    Fs = int(g["isac:frame_len"])
    F = present.size
    common = {k: g[k] for k in ("isac:scenario", "isac:scenario_sha256", "isac:seed", "isac:payload_sha256",
                                "isac:payload_bytes", "isac:chunk", "isac:frames", "isac:frame_len", "isac:slots",
                                "isac:gap", "isac:psk_order") if k in g}
    common.update({"core:sample_rate": g.get("core:sample_rate", 1.0), "isac:format": "capture",
                   "isac:tx_key": g.get("isac:key"),
                   "isac:tx_file": os.path.relpath(Path(str(stem_of(tx)) + ".sigmf-meta").resolve(), out_dir.resolve())})
    common.update(extra)
    ann = [{"core:sample_start": f * Fs, "core:sample_count": Fs, "core:label": f"frame {f}", "isac:frame_id": f,
            "isac:target_present": bool(present[f])} for f in range(F)]
    out_dir.mkdir(parents=True, exist_ok=True)
    cap0 = {"core:sample_start": 0}
    for c in meta.get("captures", [])[:1]:
        if "core:frequency" in c:
            cap0["core:frequency"] = c["core:frequency"]
    write_sigmf(out_dir / "users", users, {**common, "core:description": "user receive streams (units of sigma_k)",
                                           "isac:stream": "users"}, [cap0], ann)
    write_sigmf(out_dir / "radar", radar, {**common, "core:description": "radar receive streams (units of xi_z)",
                                           "isac:stream": "radar"}, [cap0], ann)
    return {"capture_dir": str(out_dir), "frames": F, "target_frames": int(present.sum())}


def simulate_capture_file(tx, out_dir, *, user_noise_db: float = 0.0, seed: int = 0, force: bool = False) -> dict:
    """Play a transmit recording through paper A's simulated channel (numpy: its scenario, the link state of
    its seed) into ``out_dir/users.sigmf-*`` and ``out_dir/radar.sigmf-*``; returns a summary."""
    from isac_opt.link.offline import link_state, simulate_capture
    meta, x, scn, Fs = _open_tx(tx, out_dir, force, "--simulate-capture")
    g = meta["global"]
    ch, phi = link_state(scn, int(g["isac:seed"]))
    users, radar, present = simulate_capture(scn, ch, phi, np.asarray(x), Fs, np.random.default_rng([int(seed), 11]),
                                             tx_scale=float(g.get("isac:tx_scale", 1.0)), user_noise_db=user_noise_db)
    out = _write_capture(tx, meta, out_dir, users, radar, present, {
        "core:recorder": "isac-testbed encode --simulate-capture (numpy)",
        "isac:channel": "simulated paper-A channel (isac_opt.bench.channel.ChannelEmulator), target in even "
                        "frames, fresh RCS", "isac:capture_seed": int(seed), "isac:user_noise_db": float(user_noise_db)})
    out["user_noise_db"] = float(user_noise_db)
    return out


def play_gnuradio(tx, out_dir, *, user_noise_db: float = 0.0, seed: int = 0, force: bool = False) -> dict:
    """Play a transmit recording with GNU Radio into a capture: a stock ``blocks.file_source`` (vlen M) →
    ``frame_tagger`` (frame tags every F samples, from the recording's design file) → ``frontend`` (backend
    ``sim``: the ``ris_isac_channel`` block, target in even frames) → two ``blocks.file_sink`` — then the
    SigMF sidecars. The hardware playback is the same graph with ``frontend(backend="pluto"|"uhd")``."""
    from gnuradio import blocks as grb
    from gnuradio import gr
    from blocks.frame_tagger import frame_tagger
    from blocks.frontend import frontend
    meta, x, scn, Fs = _open_tx(tx, out_dir, force, "--simulate-capture")
    g = meta["global"]
    design = Path(str(stem_of(tx)) + ".design.npz").parent / str(_need(g, "isac:design_file", str, "--tx"))
    if not design.is_file():
        raise UserError(f"--tx: isac:design_file: {design}: no such file (written next to the recording by encode)")
    F = x.shape[0] // Fs
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    import tempfile
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".playback.") as td:   # raw streams, not kept
        pu, pr = Path(td) / "users.raw", Path(td) / "radar.raw"
        tb = gr.top_block("isac offline playback")
        src = grb.file_source(gr.sizeof_gr_complex * scn.M, str(stem_of(tx)) + ".sigmf-data", False)
        tag = frame_tagger(design=str(design), M=scn.M, rx_delay=0)
        fe = frontend(backend="sim", design=str(design), M=scn.M, K=scn.K, seed=int(seed), target_mode="alternate",
                      user_noise_offset_db=float(user_noise_db), tx_scale=float(g.get("isac:tx_scale", 1.0)))
        su = grb.file_sink(gr.sizeof_gr_complex * scn.K, str(pu), False)
        sr = grb.file_sink(gr.sizeof_gr_complex * scn.M, str(pr), False)
        tb.connect(src, tag, fe)
        tb.connect((fe, 0), su)
        tb.connect((fe, 1), sr)
        tb.run()
        su.close()
        sr.close()
        native = "<c8" if sys.byteorder == "little" else ">c8"          # file_sink writes the host's complex64
        users = np.fromfile(pu, dtype=native).reshape(-1, scn.K)
        radar = np.fromfile(pr, dtype=native).reshape(-1, scn.M)
    if users.shape[0] != F * Fs or radar.shape[0] != F * Fs:
        raise UserError(f"--simulate-capture: the flowgraph delivered {users.shape[0]} samples, expected {F * Fs}")
    present = np.arange(F) % 2 == 0                                     # ris_isac_channel's alternate schedule
    return _write_capture(tx, meta, out_dir, users, radar, present, {
        "core:recorder": "isac-testbed encode --simulate-capture --capture-via gnuradio",
        "isac:channel": "GNU Radio: file_source -> frame_tagger -> frontend(sim) (ris_isac_channel), target "
                        "in even frames, fresh RCS", "isac:capture_seed": int(seed),
        "isac:user_noise_db": float(user_noise_db)})


# ------------------------------------------------------------------------------------------------------
# decode
def _tx_frames(tx_meta: dict, x: np.ndarray, scn) -> np.ndarray:
    """Waveforms X (F, M, L) complex128 back from the transmit samples (÷ the front-end scale)."""
    g = tx_meta["global"]
    Fs, L, F = int(g["isac:frame_len"]), scn.L, int(g["isac:frames"])
    X = np.asarray(x[:F * Fs], dtype=np.complex128).reshape(F, Fs, scn.M)[:, :L, :] / float(g.get("isac:tx_scale", 1.0))
    return np.transpose(X, (0, 2, 1))


def decode(capture, *, tx=None, reference=None, reference_bytes: int | None = None, scenario=None,
           pfa=(1e-1, 3e-2, 1e-2, 3e-3, 1e-3), conf: float = 0.95) -> tuple[dict, dict, list[bytes]]:
    """Decode a capture directory → (report, arrays for the PNG, delivered bytes per user).

    ``tx``: the transmit recording (radar statistics, analytic SER, CI of the file); found from the capture's
    ``isac:tx_file`` when None and present. ``reference``: 'random' or payload files (BER/SER/PER, match).
    ``scenario``: a scenario the capture must come from (checked against ``isac:scenario``).
    """
    from isac_opt.link import offline as off
    from isac_opt.link import radar_stats as rs
    cap = Path(capture)
    if not cap.is_dir():
        raise UserError(f"CAPTURE: {cap}: expected a capture directory holding users.sigmf-meta (and radar.sigmf-meta)")
    um, U = read_sigmf(cap / "users", "CAPTURE users")
    g = um["global"]
    where = f"CAPTURE {cap / 'users.sigmf-meta'}"
    scn = _scenario_of(g, where)
    if scenario is not None and scenario.to_dict() != scn.to_dict():
        diff = sorted(k for k, v in scenario.to_dict().items() if scn.to_dict().get(k) != v)
        raise UserError(f"{where}: isac:scenario: the capture is of another scenario than --scenario "
                        f"(fields differ: {', '.join(diff)})")
    if U.shape[1] != scn.K:
        raise UserError(f"{where}: core:num_channels: expected K = {scn.K} user streams, got {U.shape[1]}")
    Fs = int(_need(g, "isac:frame_len", int, where))
    chunk = int(_need(g, "isac:chunk", int, where))
    seed = int(_need(g, "isac:seed", int, where))
    from isac_opt.link.offline import frame_len
    if frame_len(scn)[1] != Fs:
        raise UserError(f"{where}: isac:frame_len: expected {frame_len(scn)[1]} for isac:scenario, got {Fs}")
    F = U.shape[0] // Fs
    if F * Fs != U.shape[0] or F == 0:
        raise UserError(f"{where}: the data holds {U.shape[0]} samples, not a whole number (>= 1) of frames of {Fs}")
    O, L, K = scn.psk_order, scn.L, scn.K
    ann = um.get("annotations", [])
    present = None
    if len(ann) == F and all("isac:target_present" in a for a in ann):
        pv = [a["isac:target_present"] for a in ann]
        present = None if any(v is None for v in pv) else np.array(pv, bool)
    dec = off.decide_symbols(np.asarray(U), Fs, L, O)                       # (F, K, L)
    rep = {"frames": F, "chunk": chunk, "scenario_sha256": g.get("isac:scenario_sha256"),
           "user_noise_db": g.get("isac:user_noise_db")}
    received, users = [], []
    for k in range(K):
        data, n_pk, n_bad = off.user_payload(dec[:, k, :], O, chunk)
        received.append(data)
        users.append({"delivered_bytes": len(data), "packets": n_pk, "packets_failed": n_bad,
                      "per": n_bad / max(n_pk, 1)})
    arrays = {"present": present}
    # transmit file: waveforms, CI, radar
    tx_path = tx
    if tx_path is None and isinstance(g.get("isac:tx_file"), str):
        cand = (cap / g["isac:tx_file"])
        tx_path = cand if cand.is_file() else None
    X = ch = phi = None
    if tx_path is not None:
        tm, tx_x = read_sigmf(tx_path, "--tx")
        tg = tm["global"]
        twhere = f"--tx {stem_of(tx_path)}.sigmf-meta"
        if tg.get("isac:format") != "transmit":
            raise UserError(f"{twhere}: isac:format: expected 'transmit', got {tg.get('isac:format')!r}")
        if tg.get("isac:scenario") != g.get("isac:scenario"):
            raise UserError(f"{twhere}: isac:scenario: the transmit file is of another scenario than the capture")
        if g.get("isac:tx_key") is not None and tg.get("isac:key") != g.get("isac:tx_key"):
            raise UserError(f"{twhere}: isac:key: the capture (isac:tx_key {str(g.get('isac:tx_key'))[:16]}…) is not "
                            f"of this transmission (isac:key {str(tg.get('isac:key'))[:16]}…)")
        if int(tg.get("isac:frames", -1)) != F or tx_x.shape[1] != scn.M:
            raise UserError(f"{twhere}: isac:frames: expected {F} frames of {scn.M} streams like the capture, got "
                            f"{tg.get('isac:frames')} of {tx_x.shape[1]}")
        ch, phi = off.link_state(scn, seed)
        X = _tx_frames(tm, tx_x, scn)
        ann_t = tm.get("annotations", [])
        rep["ci_frames_ok_engine"] = float(np.mean([bool(a.get("isac:ci_ok")) for a in ann_t])) if len(ann_t) == F else None
        w, sinr = off.frame_mvdr(scn, ch, phi, X)
        arrays["sinr_pred"] = sinr
        rep["sinr_predicted_db_all"] = float(10 * np.log10(sinr.mean()))
        rp = cap / "radar.sigmf-meta"
        if rp.is_file():
            rm, R = read_sigmf(cap / "radar", "CAPTURE radar", channels=scn.M)
            if rm["global"].get("isac:tx_key") != g.get("isac:tx_key") or R.shape[0] != U.shape[0]:
                raise UserError(f"CAPTURE {rp}: isac:tx_key: the radar and user captures are not of the same run")
            z = off.radar_z(scn, w, sinr, np.asarray(R), Fs)
            arrays["z"] = z
            if present is not None:
                est = rs.sinr_estimate(z, present, sinr, conf)
                roc = rs.roc_check(z, present, sinr, np.asarray(pfa), conf)
                rep.update({"sinr_measured_db": est["measured_db"], "sinr_predicted_db": est["predicted_db"],
                            "sinr_ci_db": [est["lo_db"], est["hi_db"]], "sinr_diff_db": est["diff_db"],
                            "sinr_predicted_in_ci": est["predicted_in_ci"], "target_frames": est["target_frames"],
                            "roc_pfa": roc["pfa"].tolist(), "roc_pfa_emp": roc["pfa_emp"].tolist(),
                            "roc_pd_emp": roc["pd_emp"].tolist(), "roc_pd_model": roc["pd_model"].tolist(),
                            "roc_pd_ci": [[a, b] for a, b in zip(roc["pd_lo"].tolist(), roc["pd_hi"].tolist())],
                            "roc_pfa_ci": [[a, b] for a, b in zip(roc["pfa_lo"].tolist(), roc["pfa_hi"].tolist())],
                            "roc_in_ci": roc["all_in_ci"]})
                arrays["roc"] = roc
    # reference payload: errors, CI of the file, analytic SER/BER
    if reference is not None:
        pays, _ = read_payloads(reference, K, int(reference_bytes or sum(g.get("isac:payload_bytes", [0])) // max(K, 1)),
                                seed, what="--reference")
        want = g.get("isac:payload_sha256")
        if isinstance(want, list) and len(want) == K:
            from isac_opt.link.offline import sha256_hex
            bad = [k for k in range(K) if sha256_hex(pays[k]) != want[k]]
            if bad:
                raise UserError(f"--reference: isac:payload_sha256: user {bad[0]}'s reference payload is not the one "
                                f"the capture carries (SHA-256 differs)")
        sent, _ = off.plan_symbols(scn, pays, chunk, F)
        if sent.shape[0] != F:
            raise UserError(f"--reference: needs {sent.shape[0]} frames, the capture has {F} (isac:frames)")
        se, be = off.error_counts(dec, sent, O)
        bps = int(round(math.log2(O)))
        for k in range(K):
            users[k].update({"ser": float(se[k] / (F * L)), "ber": float(be[k] / (F * L * bps)),
                             "payload_match": received[k] == pays[k]})
        rep["payload_match"] = all(u["payload_match"] for u in users)
        if X is not None:
            # CI of the waveforms as stored (complex64): every constraint within the contract tolerance plus
            # the bound of what complex64 rounding can change (the engine certified the float64 designs)
            from isac_opt.contract import CI_TOL
            m = off.ci_margins_frames(scn, ch, phi, X, sent)                       # (F, K)
            q = off.cf32_margin_tolerance(scn, ch, phi)
            rep["ci_frames_ok"] = float(np.mean((m >= 1 - CI_TOL - q[None, :]).all(axis=1)))
            rep["ci_min_margin_file"] = float(m.min())
            rep["ci_cf32_tolerance"] = [float(v) for v in q]
            if g.get("isac:user_noise_db") is not None:
                ser_a, ber_a = off.analytic_ser_ber(scn, ch, phi, X, sent, float(g["isac:user_noise_db"]))
                for k in range(K):
                    users[k]["ser_analytic"] = float(ser_a[k])
                    users[k]["ber_analytic"] = None if ber_a is None else float(ber_a[k])
            S = np.exp(1j * (np.pi / O + 2 * np.pi * sent / O))
            Uf = np.asarray(U).reshape(F, Fs, K)[:, :L, :].transpose(0, 2, 1)          # (F, K, L)
            arrays["derotated"] = [(Uf[:, k, :] * np.conj(S[:, k, :])).ravel() for k in range(K)]
            arrays["derotated_by"] = "intended symbol"
    if "derotated" not in arrays:
        S = np.exp(1j * (np.pi / O + 2 * np.pi * dec / O))
        Uf = np.asarray(U).reshape(F, Fs, K)[:, :L, :].transpose(0, 2, 1)
        arrays["derotated"] = [(Uf[:, k, :] * np.conj(S[:, k, :])).ravel() for k in range(K)]
        arrays["derotated_by"] = "decided symbol"
    arrays["gamma_db"] = list(np.broadcast_to(np.asarray(scn.gamma_db, float), (K,)))
    arrays["psk_order"] = O
    for key in ("per", "ber", "ser", "ser_analytic", "ber_analytic", "delivered_bytes", "packets", "packets_failed"):
        if all(key in u for u in users):
            rep[key] = [u[key] for u in users]
    arrays["symbols_per_user"] = F * L
    rep["symbols_per_user"] = F * L
    rep["pfa"] = 1e-2
    return rep, arrays, received


# ------------------------------------------------------------------------------------------------------
# commands
def _settings(args):
    from isac_opt.link.offline import EncodeSettings
    return EncodeSettings(chunk=args.chunk, batch=args.batch, layers=args.layers, dtype=args.dtype,
                          threads=args.threads, device=args.device)


def _progress_bar(done: int, total: int, width: int = 40) -> None:
    """One-line progress bar on stderr (a tty only), finished with a newline."""
    k = int(width * done / max(total, 1))
    print(f"\r  encode [{'#' * k}{'.' * (width - k)}] {done}/{total} frames", end="" if done < total else "\n",
          file=sys.stderr, flush=True)


def cmd_encode(args) -> int:
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.scenario import load_scenario
    from isac_opt.safeio import check_output_file
    from .commands import print_report
    for name, v, lo in (("--frames", args.frames, 0), ("--batch", args.batch, 1), ("--chunk", args.chunk, 1),
                        ("--threads", args.threads, 1), ("--layers", args.layers, 0)):
        if v is not None and v < lo:
            raise UserError(f"{name}: expected an integer >= {lo}, got {v}")
    if args.device == "cuda":
        import torch
        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available to torch on this machine")
    scn = load_scenario(args.scenario)
    if not isinstance(scn, ScenarioA):
        raise UserError(f"--scenario: the link runs paper-A scenarios, got {type(scn).__name__}")
    payloads, kind = read_payloads(args.payload, scn.K, args.bytes, args.seed)
    if args.simulate_capture:                     # check every output before the long work
        for n in ("users", "radar"):
            for e in ("data", "meta"):
                check_output_file(Path(args.simulate_capture) / f"{n}.sigmf-{e}", force=args.force,
                                  what="--simulate-capture")
    prog = _progress_bar if (not args.json and sys.stderr.isatty()) else None
    summ = encode(scn, payloads, args.out, seed=args.seed, settings=_settings(args), rate=args.rate,
                  frequency=args.frequency, backend=args.backend, frames=args.frames, payload_kind=kind,
                  force=args.force, progress=prog)
    eng = summ.pop("engine") or {}
    summ.update({f"engine_{k}": v for k, v in eng.items()})
    if args.simulate_capture:
        play = play_gnuradio if args.capture_via == "gnuradio" else simulate_capture_file
        summ.update({f"capture_{k}": v for k, v in play(
            summ["tx_meta"], args.simulate_capture, user_noise_db=args.user_noise_db, seed=args.capture_seed,
            force=args.force).items()})
    print_report(summ, args.json, title="isac-testbed encode (per-frame SLP designs ahead, SigMF transmit file)")
    return 0


def cmd_decode(args) -> int:
    from isac_opt.scenario import load_scenario
    from isac_opt.safeio import check_output_file
    from .commands import print_report
    scn = load_scenario(args.scenario) if args.scenario else None
    out_dir = None
    if args.received:
        out_dir = Path(args.received)
        if out_dir.exists() and not out_dir.is_dir():
            raise UserError(f"--received: {out_dir} exists and is not a directory")
    if args.png:
        check_output_file(args.png, force=args.force, what="--png")
    rep, arrays, received = decode(args.capture, tx=args.tx, reference=args.reference, reference_bytes=args.bytes,
                                   scenario=scn)
    if out_dir is not None:
        paths = [out_dir / f"user{k}.bin" for k in range(len(received))]
        for p in paths:
            check_output_file(p, force=args.force, what="--received")
        out_dir.mkdir(parents=True, exist_ok=True)
        from isac_opt.safeio import atomic_output
        for p, data in zip(paths, received):
            with atomic_output(p) as t:
                t.write_bytes(data)
    if args.png:
        from .link_png import write_link_png
        write_link_png(args.png, rep, arrays)
    print_report(rep, args.json, title="isac-testbed decode (SigMF capture -> bytes per user)")
    return 0


def add_encode(sub) -> None:
    p = sub.add_parser("encode", help="design a payload ahead into a SigMF transmit file (offline link, resumable)",
                       description="Design every frame of a payload ahead (per-frame SLP, resumable) into a SigMF "
                                   "transmit file the front ends play; optionally simulate its capture.")
    p.add_argument("--out", required=True, metavar="STEM", help="write STEM.sigmf-data/-meta and STEM.design.npz")
    p.add_argument("--scenario", default="paper-a", help="built-in name or paper-A TOML file [paper-a]")
    p.add_argument("--payload", default="random",
                   help="'random', FILE (sent to every user) or FILE,FILE,... (one per user) [random]")
    p.add_argument("--bytes", type=int, default=1000, help="bytes per user of the random payload [1000]")
    p.add_argument("--frames", type=int, default=None, help="frames at least (idle packets fill up)")
    p.add_argument("--seed", type=int, default=0, help="channel and RIS seed (the link state) [0]")
    p.add_argument("--rate", type=float, default=100e3, help="sample rate of the file [S/s] [1e5]")
    p.add_argument("--frequency", type=float, default=None, help="centre frequency [Hz] (capture segment)")
    p.add_argument("--backend", choices=("sim", "pluto", "uhd"), default="sim",
                   help="front end: sets the sample scale (sim: physical units; pluto/uhd: 0.5 of DAC full scale) [sim]")
    p.add_argument("--chunk", type=int, default=64, help="payload bytes per CRC'd packet [64]")
    p.add_argument("--batch", type=int, default=64, help="frames per engine call and per resume chunk [64]")
    p.add_argument("--layers", type=int, default=0, help="x-block polish layers after the distilled codebook lookup (0: lookup only) [0]")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="engine precision [float32]")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="engine device [cpu]")
    p.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1") or 1),
                   help="torch threads [$OMP_NUM_THREADS or 1]")
    p.add_argument("--simulate-capture", default=None, metavar="DIR",
                   help="also play the file through the simulated channel into DIR/users|radar.sigmf-*")
    p.add_argument("--capture-via", choices=("numpy", "gnuradio"), default="numpy",
                   help="simulated capture by the numpy channel or by a GNU Radio flowgraph (file_source -> "
                        "frame_tagger -> frontend sim -> file_sink) [numpy]")
    p.add_argument("--user-noise-db", type=float, default=0.0, help="extra user noise of the simulated capture [dB] [0]")
    p.add_argument("--capture-seed", type=int, default=0, help="noise/RCS seed of the simulated capture [0]")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_encode)


def add_decode(sub) -> None:
    p = sub.add_parser("decode", help="decode a SigMF capture of an encoded transmission into bytes and a report",
                       description="Decode a SigMF capture (users.sigmf-*, radar.sigmf-*) back into bytes per user "
                                   "(CRC-checked packets) and a report.")
    p.add_argument("capture", metavar="CAPTURE", help="capture directory (users.sigmf-meta, optional radar.sigmf-meta)")
    p.add_argument("--tx", default=None, help="the transmit recording (STEM or STEM.sigmf-meta); default: the "
                                              "capture's isac:tx_file")
    p.add_argument("--reference", default=None, help="'random' or the payload FILE(s): BER/SER/PER and byte match")
    p.add_argument("--bytes", type=int, default=None, help="bytes per user of a random reference [from the metadata]")
    p.add_argument("--scenario", default=None, help="check that the capture is of this scenario")
    p.add_argument("--received", default=None, metavar="DIR", help="write user k's delivered bytes to DIR/user<k>.bin")
    p.add_argument("--png", default=None, metavar="FILE", help="write the link report PNG")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_decode)
