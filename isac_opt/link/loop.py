"""Numpy-level end-to-end live link [issue 13] — the reference model of the GNU Radio link
(:mod:`blocks.link_pipeline`): payload bytes → selective-repeat ARQ packets (:mod:`isac_opt.link.arq`,
CRC-32, one packet per user per slot of P frames) → PSK symbols → per-frame designs
(:class:`~isac_opt.link.engine.LinkEngine` through the :class:`~isac_opt.link.ahead.DesignAhead` queue) →
paper A's sample-level channel (:class:`isac_opt.bench.channel.ChannelEmulator`) → user receivers that
decide symbols by angle sector WITHOUT knowing them → CRC-checked packets → slot outcomes back to the
senders (ideal return channel) → bytes in order, plus the radar on the same waveforms (per-frame MVDR
filter of the frame actually sent). The per-frame maths is in :mod:`isac_opt.link.stream`, shared with the
blocks.

One coherence block: scenario, channels and the RIS state are fixed for the run. Frames are laid out as
in the bench (L slots then a ``gap`` = max range bin of zeros, isac_opt.bench.framing), so the streaming
echo model equals spec A.4's per-frame model.

Radar statistic: per frame f, z_f = |w_fᴴ y_f|² / (w_fᴴ C_f w_f) with w_fᴴ s_f = 1, so E z = 1 without the
target and 1 + SINR_f with it (RCS α ~ CN(0, ξ0²) fresh per frame). Measured mean SINR = mean z over
target frames − mean z over target-free frames; predicted = mean SINR_f over the target frames.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..errors import IsacError
from .arq import ArqReceiver, ArqSender, aligned_chunk, check_packet, frames_per_packet, with_crc
from .packets import bits_per_symbol
from .stream import (LinkTally, SlotAssembler, analytic_error_rates, decide_psk, frames_to_samples,
                     radar_statistic, slot_frames)


@dataclass
class LinkResult:
    frames: int
    users: list = field(default_factory=list)      # per user dict
    report: dict = field(default_factory=dict)
    received: list = field(default_factory=list)   # per user delivered bytes
    arrays: dict = field(default_factory=dict)     # per-frame data for the report PNG (LinkTally.arrays)


def check_link_state(eng) -> None:
    """Refuse a link state whose codebook has a CI-infeasible symbol tuple (IsacError, one line)."""
    if not eng.codebook_ok.all():
        raise IsacError(f"link state is not CI-feasible: {int((~eng.codebook_ok).sum())} of {eng.n_tuples} "
                        f"symbol tuples have no constant-modulus waveform meeting every CI constraint "
                        f"(worst normalised margin {eng.codebook_margin.min():.3g}); use another channel draw "
                        f"(--seed) or a lower gamma_db")


def link_plan(scn, payloads, chunk: int, frames: int | None, max_frames: int | None, arq: bool):
    """(aligned chunk, P frames per slot, frames to send at least, frame cap) of a run."""
    O, L = scn.psk_order, scn.L
    bits_per_symbol(O)
    c = aligned_chunk(chunk, O, L)
    P = frames_per_packet(c, O, L)
    need = max(-(-len(p) // c) for p in payloads) * P
    lo = -(-max(int(frames or 0), P) // P) * P            # whole slots: at least ``frames``
    cap = int(max_frames) if max_frames else (max(need, lo) if not arq else 10 * need + 64 * P + lo)
    if cap < P:
        raise IsacError(f"--max-frames: expected at least one slot ({P} frames), got {max_frames}")
    return c, P, lo, cap


def slot_source(senders, P: int, order: int, L: int, min_frames: int, cap: int):
    """Symbol frames (K, L) of consecutive slots: one CRC'd packet per user per slot (ARQ's choice at the
    time the slot is built); ends when every sender is done and ``min_frames`` are out, or at ``cap``."""
    slot = 0
    while (slot + 1) * P <= cap:
        if slot * P >= min_frames and all(s.done for s in senders):
            return
        pk = [with_crc(s.next_body(slot)) for s in senders]
        yield from slot_frames(pk, order, L)
        slot += 1


def run_link(scn, ch, phi, payloads: list[bytes], *, engine_kw=None, chunk: int = 64, frames: int | None = None,
             max_frames: int | None = None, batch: int = 64, depth: int | None = None, rate: float = 100e3,
             user_noise_db: float = 0.0, seed: int = 0, starve_timeout: float = 60.0, progress=None,
             arq: bool = True, window: int = 4096) -> LinkResult:
    """Run the link over ``payloads`` (one per user) and report (see the module docstring).

    ``frames``: send at least this many frames; ``max_frames``: stop there even if ARQ has not finished
    (default: 10× what the payload needs, plus margin); ``arq=False``: every packet sent once.
    """
    from ..bench.channel import ChannelEmulator
    from ..bench.framing import auto_gap
    from ..paper_a.channels import effective_user_channels
    from .ahead import DesignAhead
    from .engine import LinkEngine, symbol_indices
    K, L, O = scn.K, scn.L, scn.psk_order
    if len(payloads) != K:
        raise IsacError(f"payload: expected {K} payloads (one per user), got {len(payloads)}")
    c, P, lo, cap = link_plan(scn, payloads, chunk, frames, max_frames, arq)
    t_all = time.perf_counter()
    eng = LinkEngine(scn, ch, phi, **(engine_kw or {}))
    check_link_state(eng)
    senders = [ArqSender(p, c, window=window, arq=arq) for p in payloads]
    receivers = [ArqReceiver() for _ in range(K)]
    slots = SlotAssembler(K, L, P, O)
    gap = auto_gap(scn)
    rng = np.random.default_rng(seed)
    chan = ChannelEmulator(scn, ch, phi, rng, target_mode="alternate", user_noise_offset_db=user_noise_db)
    Htil = effective_user_channels(ch, phi)
    nw = np.asarray(scn.noise_comm_w, float) * 10 ** (user_noise_db / 10)
    tally = LinkTally(K, O, L, rate)
    errors: list[str] = []

    def close(closed):
        for slot, pk, _ in closed:
            for k in range(K):
                r = check_packet(pk[k], c)
                ok = receivers[k].on_packet(*(r if r is not None else (None, None)))
                senders[k].feedback(slot, ok)

    t_loop, c_loop = time.perf_counter(), time.process_time()
    with DesignAhead(eng, slot_source(senders, P, O, L, lo, cap), batch=batch, depth=depth) as q:
        while True:
            got = []
            while len(got) < batch:
                fr = q.get(timeout=starve_timeout)
                if fr is None:
                    break
                got.append(fr)
            if not got:
                break
            n = len(got)
            X = np.zeros((n, scn.M, L), np.complex128)
            good = np.array([fr.error is None for fr in got])
            for j, fr in enumerate(got):
                if fr.error is None:             # an engine failure is sent silent, counted and kept
                    X[j] = fr.X
                    tally.ci_ok += int(fr.ok)
                else:
                    errors.append(f"frame {fr.frame_id}: {fr.error}")
            tally.frames += n
            tally.frames_failed += int((~good).sum())
            ids = np.array([fr.frame_id for fr in got])
            S = symbol_indices(np.stack([np.asarray(fr.S) for fr in got]), O)
            users, radar, present = chan.process(frames_to_samples(X, gap), np.arange(n) * (L + gap), ids)
            U = users.reshape(n, L + gap, K)[:, :L, :]
            dec = decide_psk(U, O)                                                   # never the sent symbols
            tally.add_samples(U[good], dec[good])          # the emulator's user outputs are already ÷ σ_k
            tally.add_decisions(dec[good], S[good])
            close(slots.push(ids, dec))
            if good.any():
                s_an, b_an = analytic_error_rates(Htil, X[good], S[good], nw, O)
                tally.ser_an += s_an
                tally.ber_an += b_an
                tally.an_frames += int(good.sum())
                sinr = eng.sinr(X[good])
                Y = radar.reshape(n, L + gap, scn.M)[good, :L, :]
                tally.add_radar(radar_statistic(eng.mvdr_filters(X[good]), Y, sinr, scn.xi0_sq,
                                                scn.noise_radar_w), present[good], sinr)
            if progress is not None:
                progress(tally.frames, cap)
        designed, busy = q.designed, q.busy_s
    close(slots.flush())
    wall = time.perf_counter() - t_loop
    rep, received = tally.report(senders=senders, receivers=receivers, designed=designed, busy_s=busy,
                                 wall_s=wall, gap=gap, cpu_s=time.process_time() - c_loop,
                                 extra={"backend": "numpy", "chunk": c, "frames_per_packet": P, "arq": arq,
                                        "frames_dropped_rx": 0, "slots_incomplete": slots.incomplete,
                                        "radar_frames_missing": 0, "table_misses": 0,
                                        "engine_failures": tally.frames_failed,
                                        "engine_error_messages": len(errors),
                                        "user_noise_db": user_noise_db, "total_s": time.perf_counter() - t_all,
                                        "engine": eng.info()})
    res = LinkResult(frames=tally.frames, report=rep, received=received, arrays=tally.arrays(scn.gamma_db))
    res.users = [{k: rep[k][u] for k in ("ber", "per", "ser", "ser_analytic", "ber_analytic", "retransmissions", "packets",
                                          "packets_failed")} | {"payload_match": received[u] == payloads[u]}
                 for u in range(K)]
    return res
