"""Hardware measurements for ``calibrate chains|channels|ris|clutter``, written against :class:`frontend.FrontEnd`.

Shared by Pluto (pyadi-iio) and USRP (gr-uhd), tested with the simulated front end of
:mod:`calibration.fake_frontend` (hidden truth). No GNU Radio / pyadi-iio import here.

Frame (one period of the cyclic TX buffer, ``n_tx`` rows)::

    [ Zadoff-Chu sync (TX0 only, SYNC_LEN) | zeros (GUARD) | payload (n_tx, L) ]

A capture of exactly one period is a circular shift of it (the TX buffer is cyclic and TX/RX share the
sample clock); :func:`align` finds the shift by circular correlation with the sync and undoes it, so every
pattern's capture has the same time reference (an integer shift; fractional delays are part of the channel).

* channels: payload = orthogonal pilots X (n_tx, T_p) (DFT rows = tones, so a narrowband/fractional delay
  is a per-tone phase, no ISI) repeated ``reps`` times; per RIS pattern Ĥ_t = LS(Y_t, X) (M_rx, M_tx);
  then :class:`RisCascadeCal` (affine LS over the Hadamard/ON-OFF/random sweep).
* ris: the same sweep with TX0 → RX0 at K receiver positions gives Y (T, K); :class:`RisStateCal`.
* clutter: payload = the designed waveform X (n_tx, L); F consecutive periods → target-free snapshots
  r_f = vec(Y_f) (antenna index fastest, ``dim = n_rx·L``) for :class:`calibration.clutter.ClutterCovCal`.
* chains (:func:`measure_chains`, no RIS): payload = slots of the :class:`ChainCal` stimulus x (zeros |
  Zadoff-Chu | zeros, ``n_samples``) + ``CHAIN_TAIL`` zeros. RX side: one slot, TX ``tx_chain`` sends x, all
  RX chains capture the same period (splitter). TX side: ``n_chains`` slots, chain i sends x alone in slot i
  (one chain at a time, all in one cyclic buffer, so every chain shares the sync's time and phase
  reference) into RX ``rx_chain``. ``reps`` captures of one period each are aligned to the first one
  (integer lag of their circular cross-correlation), averaged, then aligned by the sync; data =
  (n_chains, n_samples) for ``cal.run``.

Switching transient: after the RIS acknowledges a pattern, ``settle`` samples are dropped before the
capture (the front end also flushes stale buffers).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .chains import ChainCal
from .channels import RisCascadeCal, ls_channel
from .errors import CalibrationError, HardwareUnavailable
from .ris_states import RisStateCal, scan_response
from .signals import orthogonal_pilots, zadoff_chu

SYNC_LEN, SYNC_ROOT, GUARD = 127, 5, 16


@dataclass
class HwRun:
    """Result of one hardware measurement: ``data`` for the estimator, ``raw`` aligned captures
    (one per pattern / position), ``acks`` (one dict per RIS apply), ``extra`` set-up arrays."""

    data: np.ndarray
    raw: np.ndarray | None = None
    acks: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)


def build_frame(payload: np.ndarray) -> np.ndarray:
    """One TX period (n_tx, SYNC_LEN + GUARD + L): sync on TX0, guard, payload (|x| <= 1)."""
    payload = np.atleast_2d(np.asarray(payload, dtype=np.complex128))
    n_tx, L = payload.shape
    peak = np.max(np.abs(payload)) if payload.size else 1.0
    frame = np.zeros((n_tx, SYNC_LEN + GUARD + L), np.complex128)
    frame[0, :SYNC_LEN] = zadoff_chu(SYNC_LEN, SYNC_ROOT)
    frame[:, SYNC_LEN + GUARD:] = payload / max(peak, 1e-300)
    return frame


def align(capture: np.ndarray, period: int) -> tuple[np.ndarray, int]:
    """Undo the circular shift of a captured period: returns (aligned first period (n_rx, period), shift).

    The shift is the argmax over lags of Σ_r Σ_f |circular xcorr(capture_r window f, sync)|², summed over
    all complete periods f of the capture (the sync adds up coherently; payload and noise do not).
    """
    y = np.atleast_2d(capture)
    n_per = y.shape[1] // period
    if n_per < 1:
        raise CalibrationError("capture", f"at least one period of {period} samples", f"{y.shape[1]}")
    ref = np.zeros(period, np.complex128)
    ref[:SYNC_LEN] = zadoff_chu(SYNC_LEN, SYNC_ROOT)
    win = y[:, :n_per * period].reshape(y.shape[0], n_per, period)
    xc = np.fft.ifft(np.fft.fft(win, axis=-1) * np.conj(np.fft.fft(ref)), axis=-1)
    shift = int(np.argmax(np.sum(np.abs(xc) ** 2, axis=(0, 1))))
    return np.roll(y[:, :period], -shift, axis=1), shift


def _apply_pattern(ris, states, amp_len: int) -> dict:
    """Apply one RIS pattern (verified: the driver reads it back) and return the ack as a dict."""
    from ris_driver.device import Pattern      # application layer, lazily
    t0 = time.monotonic()
    ack = ris.apply(Pattern.from_arrays(np.asarray(states, dtype=np.int64), np.zeros(amp_len, np.int64)))
    return {"t_ack": float(ack.t_ack), "apply_s": float(ack.t_ack - t0), "attempts": int(ack.attempts),
            "cycles": int(ack.cycles)}


def ris_ids(ris) -> dict:
    """RIS identity for the calibration key (serial, firmware, board geometry)."""
    try:
        info = ris.info()
        b = info.board
        return {"ris_serial": str(info.serial), "ris_firmware": str(info.firmware),
                "ris_board": f"{b.rows}x{b.cols}x{b.bits}bit"}
    except Exception:  # noqa: BLE001 - best effort
        return {}


def pattern_sweep(fe, ris, patterns: np.ndarray, payload: np.ndarray, *, reps: int = 1, settle: int = 256,
                  progress=None, amp_len: int = 0) -> tuple[np.ndarray, np.ndarray, list]:
    """For each pattern: apply (verified), drop ``settle`` samples, capture one period, align.

    Returns (per-pattern LS channel (T, n_rx, n_tx) for the pilot payload, aligned payload captures
    (T, n_rx, L·reps), acks).
    """
    X = np.atleast_2d(payload)
    if X.shape[0] != fe.n_tx:
        raise CalibrationError("payload", f"{fe.n_tx} rows (TX chains in use)", f"{X.shape[0]}")
    frame = build_frame(np.tile(X, (1, reps)))
    period = frame.shape[1]
    fe.tx_cyclic(frame)
    step = progress or (lambda msg: None)
    H, raw, acks = [], [], []
    try:
        for t, s in enumerate(patterns):
            acks.append(_apply_pattern(ris, s, amp_len))
            y, _ = align(fe.rx(period, skip=settle), period)
            pay = y[:, SYNC_LEN + GUARD:]
            raw.append(pay)
            Ym = pay.reshape(fe.n_rx, reps, X.shape[1]).mean(axis=1)
            H.append(ls_channel(Ym, X / np.max(np.abs(X))))
            step(f"pattern {t + 1}/{len(patterns)}")
    finally:
        fe.tx_stop()
    return np.asarray(H), np.asarray(raw), acks


def measure_channels(fe, ris, cal: RisCascadeCal, *, n_pilots: int | None = None, reps: int = 4,
                     settle: int = 256, progress=None) -> HwRun:
    """Pilot × RIS sweep: data (T, n_rx, n_tx) for ``cal.run`` (cal.entry_shape must be (n_rx, n_tx))."""
    if cal.entry_shape != (fe.n_rx, fe.n_tx):
        raise CalibrationError("entry_shape", f"({fe.n_rx}, {fe.n_tx}) (RX, TX chains)", cal.entry_shape)
    if not cal.affine:
        raise CalibrationError("codebook", "a 1-bit codebook (hadamard, onoff, random) for a switched RIS",
                               cal.params["codebook"])
    X = orthogonal_pilots(fe.n_tx, n_pilots or max(8, fe.n_tx))
    H, raw, acks = pattern_sweep(fe, ris, cal.patterns(), X, reps=reps, settle=settle, progress=progress,
                                 amp_len=_amp_len(ris))
    return HwRun(H, raw, acks, {"pilots": X, "reps": reps, "settle": settle})


def _amp_len(ris) -> int:
    try:
        return int(ris.info().board.amp_len)
    except Exception:  # noqa: BLE001
        return 0


def measure_ris_table(fe, ris, cal: RisStateCal, n_positions: int, *, move=None, n_pilots: int = 8,
                      reps: int = 4, settle: int = 256, progress=None, done=None, on_position=None) -> HwRun:
    """Pattern sweep TX0 → RX0 at ``n_positions`` receiver positions (angles of :func:`scan_response`).

    ``move(k)`` is called before position k (k >= 1): the CLI prints the next angle and waits ``--wait-s``.
    ``done`` (T, k0): responses of positions 0..k0-1 measured earlier (resume: the sweep starts at k0);
    ``on_position(k, Y_so_far)`` is called after each position (the CLI saves the partial sweep).
    data: Y (T, K); raw: aligned captures of the positions measured now (T, K − k0, L);
    extra['element_response'] = Q (K, N) with unit reference gain, extra['first_position'] = k0.
    """
    N = cal.params["n_elements"]
    T = cal.params["n_slots"]
    X = orthogonal_pilots(fe.n_tx, n_pilots)
    cols = [] if done is None else list(np.asarray(done, np.complex128).reshape(T, -1).T)
    k0 = len(cols)
    raws, acks = [], []
    for k in range(k0, int(n_positions)):
        if k and move is not None:
            move(k)
        H, raw, a = pattern_sweep(fe, ris, cal.patterns(), X, reps=reps, settle=settle, progress=progress,
                                  amp_len=_amp_len(ris))
        cols.append(H[:, 0, 0])
        raws.append(raw[:, 0])
        acks += a
        if on_position is not None:
            on_position(k, np.stack(cols, axis=1))
    Q = scan_response(N, int(n_positions))
    raw = np.stack(raws, axis=1) if raws else None
    return HwRun(np.stack(cols, axis=1), raw, acks,
                 {"element_response": Q, "pilots": X, "reps": reps, "settle": settle, "first_position": k0})


def position_angles_deg(n_positions: int) -> np.ndarray:
    """Receiver angles [deg] of the K scan positions (sin θ_k = 2k/K − 1 + 1/K, broadside = 0°)."""
    u = 2 * np.arange(n_positions) / n_positions - 1 + 1 / n_positions
    return np.degrees(np.arcsin(u))


def measure_clutter(fe, X: np.ndarray, n_frames: int, *, settle: int = 256) -> HwRun:
    """Target-free frames of the designed waveform X (n_tx, L): data (F, n_rx·L), r_f = vec(Y_f)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.complex128))
    if X.shape[0] != fe.n_tx:
        raise CalibrationError("design.X", f"{fe.n_tx} rows (the TX chains of the bench)", f"{X.shape[0]} rows")
    frame = build_frame(X)
    P, L = frame.shape[1], X.shape[1]
    fe.tx_cyclic(frame)
    try:
        y = fe.rx((n_frames + 1) * P, skip=settle)
    finally:
        fe.tx_stop()
    _, shift = align(y, P)
    y = y[:, shift:shift + n_frames * P].reshape(fe.n_rx, n_frames, P)[:, :, SYNC_LEN + GUARD:]  # (R, F, L)
    frames = y.transpose(1, 2, 0).reshape(n_frames, L * fe.n_rx)        # antenna index fastest
    return HwRun(frames, y, [], {"waveform": X, "settle": settle})


CHAIN_TAIL = 64          # zeros after the last chain slot: no chain's window reaches the next period's sync


def chain_frame(cal: ChainCal, side: str, n_tx: int, tx_chain: int = 0) -> np.ndarray:
    """The cyclic TX period of a chain measurement, (n_tx, P) complex, |x| <= 1: :func:`build_frame` of
    the slots plus ``CHAIN_TAIL`` zeros (the sync on TX0 gives the slots their time reference).

    ``side="rx"``: one slot, row ``tx_chain`` = the stimulus x (``n_samples``), other rows zero.
    ``side="tx"``: ``n_chains`` slots, row i = x in slot i, zero elsewhere (one chain at a time).
    Slot i of the aligned period starts at SYNC_LEN + GUARD + i·n_samples.
    """
    x = cal.stimulus()
    n, C = x.size, cal.params["n_chains"]
    if side == "rx":
        if not 0 <= tx_chain < n_tx:
            raise CalibrationError("tx_chain", f"a TX chain index in [0, {n_tx})", tx_chain)
        pay = np.zeros((n_tx, n + CHAIN_TAIL), np.complex128)
        pay[tx_chain, :n] = x
        return build_frame(pay)
    if side != "tx":
        raise CalibrationError("side", "'tx' or 'rx'", repr(side))
    if C != n_tx:
        raise CalibrationError("n_chains", f"the {n_tx} TX chains in use (side 'tx')", C)
    pay = np.zeros((n_tx, C * n + CHAIN_TAIL), np.complex128)
    for i in range(C):
        pay[i, i * n:(i + 1) * n] = x
    return build_frame(pay)


def _xcorr_lag(y: np.ndarray, ref: np.ndarray) -> int:
    """Integer lag τ maximising Σ_rows Σ_refs |circular xcorr|², i.e. y ≈ roll(ref, τ) (rows (R, P), refs (K, P))."""
    Y = np.fft.fft(np.atleast_2d(y), axis=-1)[:, None, :]
    Rf = np.conj(np.fft.fft(np.atleast_2d(ref), axis=-1))[None, :, :]
    xc = np.fft.ifft(Y * Rf, axis=-1)
    return int(np.argmax(np.sum(np.abs(xc) ** 2, axis=(0, 1))))


def measure_chains(fe, cal: ChainCal, *, reps: int = 4, settle: int = 0, tx_chain: int = 0, rx_chain: int = 0,
                   progress=None) -> HwRun:
    """Chain measurement through a front end (module docstring) [bench notes §5.1]: data (n_chains, n_samples)
    for ``cal.run``.

    ``cal.params['side']`` picks the set-up: ``rx`` needs ``fe.n_rx == n_chains`` (TX ``tx_chain`` → splitter →
    all RX), ``tx`` needs ``fe.n_tx == n_chains`` (each TX in its slot → RX ``rx_chain``). Delays and phases are
    only meaningful relative to a reference chain (the capture start is arbitrary): use ``ChainCal(reference=0)``.
    raw: aligned captures (reps, n_rx used, P); extra: ``frame`` (n_tx, P), ``shifts`` (reps,) lags undone.
    """
    side, C = cal.params["side"], cal.params["n_chains"]
    n = cal.params["n_samples"]
    if side == "rx" and fe.n_rx != C:
        raise CalibrationError("n_chains", f"the {fe.n_rx} RX chains in use (side 'rx')", C)
    if side == "tx" and not 0 <= rx_chain < fe.n_rx:
        raise CalibrationError("rx_chain", f"an RX chain index in [0, {fe.n_rx})", rx_chain)
    if int(reps) < 1:
        raise CalibrationError("reps", "an integer >= 1", reps)
    frame = chain_frame(cal, side, fe.n_tx, tx_chain)
    P = frame.shape[1]
    step = progress or (lambda msg: None)
    caps, shifts = [], []
    fe.tx_cyclic(frame)
    try:
        for k in range(int(reps)):
            y = np.atleast_2d(fe.rx(P, skip=settle))
            y = y if side == "rx" else y[rx_chain:rx_chain + 1]
            if y.shape[1] < P:
                raise CalibrationError("capture", f"{P} samples (one period)", f"{y.shape[1]}")
            y = y[:, :P]
            lag = 0 if not caps else _xcorr_lag(y, caps[0])       # same waveform: exact integer lag
            caps.append(np.roll(y, -lag, axis=1))
            shifts.append(lag)
            step(f"capture {k + 1}/{reps}")
    finally:
        fe.tx_stop()
    mean, s0 = align(np.mean(caps, axis=0), P)                   # the sync on TX0: slot 0 at SYNC_LEN + GUARD
    raw = np.roll(np.asarray(caps), -s0, axis=-1)
    a = SYNC_LEN + GUARD
    data = mean[:, a:a + n] if side == "rx" else mean[0, a:a + C * n].reshape(C, n)
    return HwRun(data, raw, [], {"frame": frame, "shifts": (np.asarray(shifts) + s0) % P, "reps": int(reps),
                                 "settle": int(settle), "tx_chain": tx_chain, "rx_chain": rx_chain})


def design_waveform(path) -> np.ndarray:
    """The transmit waveform X (M, L) of a design file (``isac-testbed design``), or an .npy/.npz with X."""
    p = str(path)
    try:
        if p.endswith(".npy"):
            return np.load(p)
        with np.load(p, allow_pickle=False) as z:
            if "X" in z.files:
                return np.asarray(z["X"])
    except FileNotFoundError:
        raise CalibrationError("design", "an existing design file", repr(p)) from None
    except (OSError, ValueError) as exc:
        raise CalibrationError("design", "a design .npz with an array 'X' (M, L)", str(exc)) from None
    raise CalibrationError("design", "a design .npz with an array 'X' (M, L)", f"{p} without 'X'")


def open_ris_checked(url: str | None):
    """``ris_driver.open_ris(url)`` with driver errors turned into one line (HardwareUnavailable)."""
    if not url:
        raise HardwareUnavailable("this measurement switches the RIS: pass --ris URL "
                                  "(serial:///dev/ttyUSB0, osris+serial://..., zmq://host:port, sim://NAME)")
    try:
        from ris_driver import open_ris
        return open_ris(url)
    except Exception as exc:  # noqa: BLE001
        raise HardwareUnavailable(f"cannot open the RIS {url!r}: {exc}") from None


__all__ = ["HwRun", "build_frame", "align", "pattern_sweep", "measure_channels", "measure_ris_table", "chain_frame",
           "measure_chains",
           "measure_clutter", "position_angles_deg", "design_waveform", "open_ris_checked", "ris_ids"]
