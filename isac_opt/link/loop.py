"""Numpy-level end-to-end live link [issue 13]: payload bytes → CRC'd packets → PSK symbols → per-frame
designs (:class:`~isac_opt.link.engine.LinkEngine` through the :class:`~isac_opt.link.ahead.DesignAhead`
queue) → paper A's sample-level channel (:class:`isac_opt.bench.channel.ChannelEmulator`) → user
receivers that decide symbols by angle sector WITHOUT knowing them → bytes, plus the radar on the same
waveforms (per-frame MVDR filter of the frame actually sent).

One coherence block: scenario, channels and the RIS state are fixed for the run. Frames are laid out as
in the bench (L slots then a ``gap`` = max range bin of zeros, isac_opt.bench.framing), so the streaming
echo model equals spec A.4's per-frame model.

Radar statistic: per frame f, z_f = |w_fᴴ y_f|² / (w_fᴴ C_f w_f) with w_fᴴ s_f = 1, so E z = 1 without the
target and 1 + SINR_f with it (RCS α ~ CN(0, ξ0²) fresh per frame). Measured mean SINR = mean z over
target frames − mean z over target-free frames; predicted = mean SINR_f over the target frames.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..ci import ber_analytic_qpsk, ser_analytic
from ..errors import IsacError
from .packets import bits_per_symbol, parse_packets, symbols_to_bytes, user_frames


@dataclass
class LinkResult:
    frames: int
    users: list = field(default_factory=list)      # per user dict
    report: dict = field(default_factory=dict)
    received: list = field(default_factory=list)   # per user delivered bytes


def run_link(scn, ch, phi, payloads: list[bytes], *, engine_kw=None, chunk: int = 64, frames: int | None = None,
             batch: int = 64, depth: int | None = None, rate: float = 100e3, user_noise_db: float = 0.0,
             seed: int = 0, starve_timeout: float = 60.0, progress=None) -> LinkResult:
    """Run the link over ``payloads`` (one per user) and report (see the module docstring)."""
    from ..bench.channel import ChannelEmulator
    from ..bench.framing import auto_gap
    from ..paper_a.channels import effective_user_channels
    from .ahead import DesignAhead
    from .engine import LinkEngine
    K, L, O = scn.K, scn.L, scn.psk_order
    if len(payloads) != K:
        raise IsacError(f"payload: expected {K} payloads (one per user), got {len(payloads)}")
    bits_per_symbol(O)
    t_all = time.perf_counter()
    eng = LinkEngine(scn, ch, phi, **(engine_kw or {}))
    if not eng.codebook_ok.all():
        raise IsacError(f"link state is not CI-feasible: {int((~eng.codebook_ok).sum())} of {eng.n_tuples} "
                        f"symbol tuples have no constant-modulus waveform meeting every CI constraint "
                        f"(worst normalised margin {eng.codebook_margin.min():.3g})")
    per_user = [user_frames(p, chunk, O, L) for p in payloads]
    F = max(max(f.shape[0] for f, _ in per_user), int(frames or 0))
    sym = np.stack([user_frames(p, chunk, O, L, F)[0] for p in payloads], axis=1)    # (F, K, L)
    n_packets = [n for _, n in per_user]
    gap = auto_gap(scn)
    Fs = L + gap
    rng = np.random.default_rng(seed)
    chan = ChannelEmulator(scn, ch, phi, rng, target_mode="alternate", user_noise_offset_db=user_noise_db)
    Htil = effective_user_channels(ch, phi)
    nw = np.asarray(scn.noise_comm_w, float) * 10 ** (user_noise_db / 10)
    dec = np.empty((F, K, L), np.int64)
    ser_an = np.zeros(K)
    ber_an = np.zeros(K)
    z_stat, present_all, sinr_pred = [], [], []
    ok_frames, errors = 0, []
    t_loop = time.perf_counter()
    with DesignAhead(eng, iter(sym), batch=batch, depth=depth) as q:
        done = 0
        while done < F:
            chunk_frames = []
            while len(chunk_frames) < batch and done + len(chunk_frames) < F:
                fr = q.get(timeout=starve_timeout)
                if fr is None:
                    break
                chunk_frames.append(fr)
            if not chunk_frames:
                break
            n = len(chunk_frames)
            X = np.zeros((n, scn.M, L), np.complex128)
            for j, fr in enumerate(chunk_frames):
                if fr.error is not None:         # engine failure: the frame is sent silent and counted
                    errors.append(fr.frame_id)
                    continue
                X[j] = fr.X
                ok_frames += int(fr.ok)
            samples = np.zeros((n, Fs, scn.M), np.complex128)
            samples[:, :L, :] = np.transpose(X, (0, 2, 1))
            pos = np.arange(n) * Fs
            ids = np.array([fr.frame_id for fr in chunk_frames])
            users, radar, present = chan.process(samples.reshape(-1, scn.M), pos, ids)
            U = users.reshape(n, Fs, K)[:, :L, :]                                      # (n, L, K), ÷σ_k
            dec[ids] = np.transpose(np.floor(np.mod(np.angle(U), 2 * np.pi) / (2 * np.pi / O)).astype(np.int64) % O,
                                    (0, 2, 1))
            S = np.stack([fr.S for fr in chunk_frames])
            Z = np.einsum("km,bml->bkl", Htil, X)
            ser_an += ser_analytic(Z, S, nw, O).mean(axis=2).sum(axis=0)
            if O == 4:
                ber_an += ber_analytic_qpsk(Z, S, nw).mean(axis=2).sum(axis=0)
            good = np.array([fr.error is None for fr in chunk_frames])
            if good.any():
                W = eng.mvdr_filters(X[good])
                sinr = eng.sinr(X[good])
                Y = radar.reshape(n, Fs, scn.M)[good, :L, :].reshape(int(good.sum()), -1)   # vec, antenna fastest
                # radar normalised by σ_z: wᴴCw/σ_z² = ξ0²/(σ_z² SINR)
                den = scn.xi0_sq / (scn.noise_radar_w * sinr)
                z_stat.append(np.abs(np.einsum("bn,bn->b", W.conj(), Y)) ** 2 / den)
                present_all.append(present[good])
                sinr_pred.append(sinr)
            done += n
            if progress is not None:
                progress(done, F)
        designed, busy = q.designed, q.busy_s
    wall = time.perf_counter() - t_loop
    # receivers: decided symbols → bytes → CRC'd packets (never the sent symbols)
    res = LinkResult(frames=F)
    bps = bits_per_symbol(O)
    for k in range(K):
        stream = symbols_to_bytes(dec[:, k, :].ravel(), O)
        pk = parse_packets(stream, chunk)
        data = [p for s, p in pk if p is not None]
        got = b"".join(data)
        res.received.append(got)
        n_bad = sum(1 for _, p in pk if p is None)
        sent = sym[:, k, :]
        sym_err = int(np.count_nonzero(dec[:, k, :] != sent))
        lab = lambda i: np.asarray(i) ^ (np.asarray(i) >> 1)
        x = lab(dec[:, k, :]) ^ lab(sent)
        bit_err = int(sum(((x >> b) & 1).sum() for b in range(bps)))
        res.users.append({"packets": n_packets[k], "packets_failed": n_bad,
                          "per": n_bad / max(len(pk), 1), "ser": sym_err / sent.size,
                          "ser_analytic": float(ser_an[k] / F), "ber": bit_err / (sent.size * bps),
                          "ber_analytic": float(ber_an[k] / F) if O == 4 else None,
                          "payload_match": got == payloads[k]})
    z = np.concatenate(z_stat) if z_stat else np.zeros(0)
    pr = np.concatenate(present_all) if present_all else np.zeros(0, bool)
    sp = np.concatenate(sinr_pred) if sinr_pred else np.zeros(0)
    meas = float(z[pr].mean() - z[~pr].mean()) if pr.any() and (~pr).any() else float("nan")
    pred = float(sp[pr].mean()) if pr.any() else float("nan")
    bits_ok = sum(8 * len(r) for r, u in zip(res.received, res.users))
    air_s = F * Fs / rate
    res.report = {
        "frames": F, "frames_failed": len(errors), "ci_frames_ok": ok_frames / F,
        "ber": [u["ber"] for u in res.users], "per": [u["per"] for u in res.users],
        "ser": [u["ser"] for u in res.users], "ser_analytic": [u["ser_analytic"] for u in res.users],
        "ber_analytic": [u["ber_analytic"] for u in res.users],
        "payload_match": all(u["payload_match"] for u in res.users),
        "goodput_bps": bits_ok / air_s, "goodput_wall_bps": bits_ok / wall,
        "designs_per_s": designed / busy if busy > 0 else float("nan"),
        "realtime_factor": (F * Fs / wall) / rate, "sample_rate": rate,
        "sinr_measured_db": 10 * math.log10(meas) if meas > 0 else float("nan"),
        "sinr_predicted_db": 10 * math.log10(pred) if pred > 0 else float("nan"),
        "target_frames": int(pr.sum()), "wall_s": wall, "total_s": time.perf_counter() - t_all,
        "user_noise_db": user_noise_db, "engine": eng.info(),
    }
    return res
