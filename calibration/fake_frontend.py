"""A simulated SDR front end with hidden truth, for testing the hardware paths without hardware.

:class:`SimFrontEnd` implements the :class:`calibration.frontend.FrontEnd` interface. It models a
continuous sample stream: the cyclic TX buffer starts at a random phase of the stream, every ``rx`` call
starts where the stream is now (so every capture is an unknown circular shift of the frame), the channel
follows the pattern the in-process RIS simulator (``sim://NAME``) has actually committed, and for
``transient`` samples after each commit the previous pattern's channel is still seen (switching transient).

The channel is a callable ``channel(gamma, position) -> H (n_rx, n_tx)`` of the committed reflection
coefficients γ (N,) and the receiver position index (set by the test's ``move`` callback). Hidden chain
gains (``sim_bench.draw_chain_truth``) multiply it: H_seen = diag(g_rx) H diag(g_tx). For clutter,
``clutter_cov`` C (n_rx·L, n_rx·L) makes the payload part of each period a fresh CN(0, C) snapshot
(static waveform, fluctuating clutter), i.e. ``vec`` of the (n_rx, L) block, antenna index fastest.

Chain delays: with ``chain_delay_max`` > 0 every TX and RX chain also gets a hidden delay
U(−max, max) samples (integer + fractional; ``d_tx``, ``d_rx``), so RX r sees TX j's periodic buffer
delayed by d_rx[r] + d_tx[j] (exact band-limited periodic interpolation over the period) — the
:class:`calibration.chains.ChainCal` error model g_i·x(n − d_i) per chain, for ``calibrate chains``.
"""
from __future__ import annotations

import numpy as np

from .signals import frac_delay
from .sim_bench import draw_chain_truth


class SimFrontEnd:
    """Simulated bench front end (see module docstring)."""

    def __init__(self, rng: np.random.Generator, *, n_tx: int, n_rx: int, ris_name: str | None = None,
                 channel=None, noise_std: float = 0.01, transient: int = 64, lo_hz: float = 5.8e9,
                 fs_hz: float = 2e6, serial: str = "FAKE-0001", chain_gains: bool = True, clutter_cov=None,
                 sync_len: int = 0, chain_delay_max: float = 0.0):
        self.rng, self.n_tx, self.n_rx = rng, int(n_tx), int(n_rx)
        self.lo_hz, self.fs_hz, self.serial = float(lo_hz), float(fs_hz), serial
        self.channel, self.noise_std, self.transient = channel, float(noise_std), int(transient)
        self.position = 0
        dmax = float(chain_delay_max)
        tx = draw_chain_truth(rng, n_tx, max_delay=dmax) if chain_gains else None
        rx = draw_chain_truth(rng, n_rx, max_delay=dmax) if chain_gains else None
        self.g_tx = tx["gain"] if tx is not None else np.ones(n_tx)
        self.g_rx = rx["gain"] if rx is not None else np.ones(n_rx)
        self.d_tx = tx["delay"] if tx is not None and dmax > 0 else np.zeros(n_tx)
        self.d_rx = rx["delay"] if rx is not None and dmax > 0 else np.zeros(n_rx)
        self._dframe = None
        self.clutter_cov = clutter_cov
        self._sync_len = int(sync_len)
        self._frame = None
        self._t = 0                       # stream sample index
        self._offset = 0                  # stream index of the frame's first sample (mod period)
        self._board = None
        self._since_commit = 10 ** 9
        self._H_prev = self._H_now = None
        if ris_name is not None:
            from ris_driver.sim import get_simulator
            self._board = get_simulator(ris_name)
            self._board.add_listener(self._on_commit)
            self._H_now = self._seen()
        self.rx_calls = 0

    # ---------------------------------------------------------------- hidden truth
    def _seen(self) -> np.ndarray:
        gamma = self._board.applied_coefficients() if self._board is not None else None
        H = np.asarray(self.channel(gamma, self.position), np.complex128).reshape(self.n_rx, self.n_tx)
        return self.g_rx[:, None] * H * self.g_tx[None, :]

    def _on_commit(self, pattern) -> None:
        self._H_prev = self._H_now
        self._H_now = self._seen()
        self._since_commit = 0

    def seen_channel(self, gamma, position: int = 0) -> np.ndarray:
        """The channel the front end would show for γ at ``position`` (chain gains included)."""
        H = np.asarray(self.channel(gamma, position), np.complex128).reshape(self.n_rx, self.n_tx)
        return self.g_rx[:, None] * H * self.g_tx[None, :]

    # ---------------------------------------------------------------- FrontEnd interface
    def ids(self) -> dict:
        return {"sdr": f"fake://{self.serial}", "sdr_hw_serial": self.serial, "sdr_driver": "fake"}

    def gains_db(self) -> list:
        return [0.0] * (self.n_rx + self.n_tx)

    def tx_cyclic(self, bufs) -> None:
        bufs = np.atleast_2d(np.asarray(bufs, np.complex128))
        assert bufs.shape[0] == self.n_tx, bufs.shape
        self._frame = bufs
        self._dframe = None
        if np.any(self.d_tx) or np.any(self.d_rx):       # (n_rx, n_tx, P): TX j's buffer as RX r sees it
            self._dframe = frac_delay(np.broadcast_to(bufs, (self.n_rx,) + bufs.shape),
                                      self.d_rx[:, None] + self.d_tx[None, :])
        self._offset = int(self.rng.integers(0, bufs.shape[1]))

    def tx_stop(self) -> None:
        self._frame = None

    def rx(self, n_samples: int, skip: int = 0) -> np.ndarray:
        self.rx_calls += 1
        n = int(n_samples) + int(skip)
        self._t += int(self.rng.integers(0, 5000))                  # host latency between calls
        idx = np.arange(self._t, self._t + n)
        y = np.zeros((self.n_rx, n), np.complex128)
        if self._frame is not None:
            P = self._frame.shape[1]
            x = self._frame[:, (idx - self._offset) % P]
            if self._H_now is None:
                self._H_now = self._seen()
            if self._dframe is not None:
                y = np.einsum("rt,rtn->rn", self._H_now, self._dframe[:, :, (idx - self._offset) % P])
            else:
                y = self._H_now @ x
            # switching transient: the previous pattern's channel (plus a glitch) right after a commit
            k = max(0, min(n, self.transient - self._since_commit))
            if k and self._H_prev is not None:
                y[:, :k] = (self._H_prev @ x[:, :k]) + 0.5 * (self.rng.standard_normal((self.n_rx, k)))
            if self.clutter_cov is not None:
                y = self._clutter(idx, P)
        self._since_commit += n
        self._t += n
        w = self.noise_std * (self.rng.standard_normal(y.shape) + 1j * self.rng.standard_normal(y.shape)) / np.sqrt(2)
        return (y + w)[:, int(skip):]

    def _clutter(self, idx, P) -> np.ndarray:
        """Sync leg through the channel; payload = one CN(0, C) snapshot per period."""
        x = self._frame[:, (idx - self._offset) % P]
        y = self._H_now @ x
        C = self.clutter_cov
        L = C.shape[0] // self.n_rx
        Lc = np.linalg.cholesky(C)
        pos = (idx - self._offset) % P
        per = (idx - self._offset) // P
        start = P - L
        for p in np.unique(per):
            w = (self.rng.standard_normal(C.shape[0]) + 1j * self.rng.standard_normal(C.shape[0])) / np.sqrt(2)
            blk = (Lc @ w).reshape(L, self.n_rx).T                   # vec antenna-fastest -> (n_rx, L)
            sel = (per == p) & (pos >= start)
            y[:, sel] = blk[:, pos[sel] - start]
        return y

    def close(self) -> None:
        self.tx_stop()
