"""Streaming emulator of paper A's RIS-ISAC channel [spec A.3, A.4] for the simulated bench.

Input: the M transmit streams x[t] (one complex sample per antenna and slot). Outputs, per sample t:

* users:  y_k[t] = h̃_kᴴ(φ) x[t] + n_k[t],  h̃_kᴴ = h_kᴴ + h_{r,k}ᴴ Φ G,  n_k ~ CN(0, σ_k²·u)     [A.3 (1)]
* radar:  r[t] = Σ_{i=0..Q} α_i(frame of t−d_i) · a_i (b_iᵀ x[t − d_i]) + z[t],  z ~ CN(0, ξ_z² I)  [A.4 (3)]

with the legs (a_i, b_i) of target (i = 0, bin d_0) and clutters (bins d_q) evaluated at the RIS's
*current* coefficients φ, and α_i drawn per frame: α_0 ~ CN(0, ξ0²) (zero when the target is off),
α_q ~ CN(0, ξ_q²) (``rcs="fresh"``), or fixed α_0 = ξ0, α_q = ξ_q (``rcs="fixed"``). The echo of a
sample keeps the α of the frame it was transmitted in. ``u`` = 10^{user_noise_offset_db/10} (an extra user
noise factor to make SER measurable; 0 dB = the scenario).

``normalize=True`` divides the radar outputs by ξ_z and user k's output by σ_k (the scenario's noise std,
so the user noise variance is u in these units): outputs are O(1) and complex64 friendly. Impairment hooks (for calibration): per-chain
complex TX and RX gains, integer TX and RX delays, a radar-receiver CFO and RIS phase quantisation
(:meth:`ChannelEmulator.set_impairments` replaces them while streaming, e.g. the hidden chain errors of
``isac-testbed run --impair-seed N``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..paper_a.channels import effective_user_channels, legs

TARGET_MODES = ("on", "off", "alternate", "random")
RCS_MODES = ("fresh", "fixed")


@dataclass
class Impairments:
    """Hardware impairments imposed by the simulated front end (all optional).

    tx_gain : complex (M,) per-TX-chain gain (phase/amplitude error) [linear]
    rx_gain : complex (M,) per-RX-chain gain [linear]
    rx_delay : int (M,) per-RX-chain integer delay [samples], ≥ 0
    tx_delay : int (M,) per-TX-chain integer delay [samples], ≥ 0 (before the channel: users and radar)
    cfo : float, radar-receiver carrier frequency offset [cycles/sample]
    ris_phase_bits : int, quantise the applied φ to 2^bits phases (0 = continuous)
    """

    tx_gain: np.ndarray | None = None
    rx_gain: np.ndarray | None = None
    rx_delay: np.ndarray | None = None
    cfo: float = 0.0
    ris_phase_bits: int = 0
    tx_delay: np.ndarray | None = None

    def check(self, M: int) -> "Impairments":
        for name in ("tx_gain", "rx_gain"):
            v = getattr(self, name)
            if v is not None:
                v = np.asarray(v, np.complex128).reshape(-1)
                if v.shape != (M,):
                    raise ValueError(f"{name}: expected {M} complex gains, got shape {v.shape}")
                setattr(self, name, v)
        for name in ("rx_delay", "tx_delay"):
            v = getattr(self, name)
            if v is not None:
                d = np.asarray(v).reshape(-1)
                if d.shape != (M,) or np.any(d < 0) or np.any(d != np.round(d)):
                    raise ValueError(f"{name}: expected {M} integers >= 0, got {v!r}")
                setattr(self, name, d.astype(np.int64))
        if int(self.ris_phase_bits) < 0:
            raise ValueError(f"ris_phase_bits: expected >= 0, got {self.ris_phase_bits}")
        return self


def quantize_phases(phi, bits: int) -> np.ndarray:
    """Nearest of the 2^bits phases e^{j2πs/2^bits} (unit modulus); bits = 0 returns φ unchanged."""
    phi = np.asarray(phi, np.complex128)
    if bits <= 0:
        return phi
    step = 2 * np.pi / 2 ** bits
    return np.exp(1j * step * np.round(np.angle(phi) / step))


def target_schedule(mode: str, frames, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Target present per frame index: on / off / alternate (even frames) / random (prob. p)."""
    frames = np.asarray(frames, np.int64)
    if mode == "on":
        return np.ones(frames.shape, bool)
    if mode == "off":
        return np.zeros(frames.shape, bool)
    if mode == "alternate":
        return frames % 2 == 0
    if mode == "random":
        return rng.random(frames.shape) < p
    raise ValueError(f"target_mode: expected one of {TARGET_MODES}, got {mode!r}")


class ChannelEmulator:
    """Sample-by-sample (vectorised) emulator of spec A's channel; see the module docstring.

    Parameters
    ----------
    scn : ScenarioA; ch : ChannelsA — the scenario and channel realisation (from a design file)
    phi : complex (N,) — RIS coefficients initially applied
    rng : np.random.Generator — noise and RCS draws
    target_mode : "on" | "off" | "alternate" | "random"; rcs : "fresh" | "fixed"
    tx_scale : the source's amplitude scale (the emulator divides it out) [1]
    """

    def __init__(self, scn, ch, phi, rng: np.random.Generator, *, target_mode: str = "alternate",
                 rcs: str = "fresh", normalize: bool = True, tx_scale: float = 1.0,
                 user_noise_offset_db: float = 0.0, impairments: Impairments | None = None):
        if target_mode not in TARGET_MODES:
            raise ValueError(f"target_mode: expected one of {TARGET_MODES}, got {target_mode!r}")
        if rcs not in RCS_MODES:
            raise ValueError(f"rcs: expected one of {RCS_MODES}, got {rcs!r}")
        if not tx_scale > 0:
            raise ValueError(f"tx_scale: expected > 0, got {tx_scale}")
        self.scn, self.ch, self.rng = scn, ch, rng
        self.target_mode, self.rcs, self.normalize = target_mode, rcs, bool(normalize)
        self.tx_scale = float(tx_scale)
        self.imp = (impairments or Impairments()).check(scn.M)
        self.bins = np.array((scn.target_bin,) + tuple(scn.clutter_bins), np.int64)
        self.D = int(self.bins.max()) if self.bins.size else 0
        self.xi = np.sqrt(np.r_[scn.xi0_sq, np.asarray(scn.xi_q_sq, float)])
        u = 10.0 ** (float(user_noise_offset_db) / 10.0)
        self.user_noise_w = np.asarray(scn.noise_comm_w, float) * u
        self._x_hist = np.zeros((self.D, scn.M), np.complex128)
        self._a_hist = np.zeros((self.D, scn.Q + 1), np.complex128)
        self._alpha = self._draw_alpha(np.array([-1]))[0]     # α before the first frame tag
        self._target = False
        self._t = 0                                            # samples processed (for the CFO)
        self.set_impairments(self.imp)
        self.set_phi(phi)

    def set_impairments(self, imp: Impairments) -> None:
        """Replace the impairments (delay histories restart at zero; the RIS quantisation applies at the
        next :meth:`set_phi`)."""
        self.imp = (imp or Impairments()).check(self.scn.M)
        M = self.scn.M
        dmax = int(self.imp.rx_delay.max()) if self.imp.rx_delay is not None else 0
        self._r_hist = np.zeros((dmax, M), np.complex128)
        tmax = int(self.imp.tx_delay.max()) if self.imp.tx_delay is not None else 0
        self._tx_hist = np.zeros((tmax, M), np.complex128)

    @staticmethod
    def _delay_chains(x, hist, delay):
        """Per-column integer delays with a history of the last max(delay) samples; returns (y, hist)."""
        dm = hist.shape[0]
        xe = np.vstack([hist, x])
        rows = dm - delay[None, :] + np.arange(x.shape[0])[:, None]
        return xe[rows, np.arange(x.shape[1])[None, :]], xe[-dm:]

    # ------------------------------------------------------------------------------------------------
    def set_phi(self, phi) -> None:
        """Apply new RIS coefficients (N,) from the next sample on (quantised if configured)."""
        phi = np.asarray(phi, np.complex128).reshape(-1)
        if phi.shape != (self.scn.N,):
            raise ValueError(f"phi: expected {self.scn.N} RIS coefficients, got shape {phi.shape}")
        self.phi = quantize_phases(phi, int(self.imp.ris_phase_bits))
        self.Htil = effective_user_channels(self.ch, self.phi)            # (K, M)
        self.a, self.b = legs(self.ch, self.phi, self.scn.ris_leg_model)  # (Q+1, M) each

    def _draw_alpha(self, frames) -> np.ndarray:
        n = len(frames)
        if self.rcs == "fixed":
            al = np.tile(self.xi.astype(np.complex128), (n, 1))
        else:
            g = (self.rng.standard_normal((n, self.xi.size)) + 1j * self.rng.standard_normal((n, self.xi.size)))
            al = g * (self.xi / np.sqrt(2.0))
        return al

    def process(self, x, frame_pos=(), frame_idx=()):
        """Run n samples through the channel.

        Parameters
        ----------
        x : complex (n, M) transmit samples (as emitted by the source, i.e. times ``tx_scale``)
        frame_pos : int (f,) positions in 0..n−1 where a frame starts; frame_idx : int (f,) its index

        Returns
        -------
        users : complex128 (n, K); radar : complex128 (n, M); target : bool (f,) target present per frame
        """
        scn = self.scn
        x = np.asarray(x).astype(np.complex128) / self.tx_scale
        n = x.shape[0]
        if self.imp.tx_gain is not None:
            x = x * self.imp.tx_gain
        if self.imp.tx_delay is not None and self._tx_hist.shape[0]:
            x, self._tx_hist = self._delay_chains(x, self._tx_hist, self.imp.tx_delay)
        frame_pos = np.asarray(frame_pos, np.int64)
        frame_idx = np.asarray(frame_idx, np.int64)
        # per-frame RCS and target state; ends with the state of the last frame
        alphas = self._draw_alpha(frame_idx)
        present = target_schedule(self.target_mode, frame_idx, self.rng)
        alphas[:, 0] *= present
        seg_alpha = np.vstack([self._alpha[None, :], alphas])
        seg_of_t = np.searchsorted(frame_pos, np.arange(n), side="right")   # 0 = before the first tag
        alpha_t = seg_alpha[seg_of_t]                                        # (n, Q+1)
        if frame_idx.size:
            self._alpha = alphas[-1]
        # unit complex normals for all M + K outputs in one float32 draw (the noise dominates the cost)
        nz = self.rng.standard_normal((n, 2 * (scn.M + scn.K)), dtype=np.float32).view(np.complex64)
        # users [A.3 (1)]
        users = x @ self.Htil.T + nz[:, scn.M:] * np.sqrt(self.user_noise_w / 2.0)
        # radar [A.4 (3)]: delayed copies with the α of their transmit frame
        xh = np.vstack([self._x_hist, x])
        ah = np.vstack([self._a_hist, alpha_t])
        D = self.D
        proj = np.empty((n, self.bins.size), np.complex128)
        for i, d in enumerate(self.bins):                     # Q+1 ≤ a handful of scatterers
            sl = slice(D - d, D - d + n)
            proj[:, i] = (xh[sl] @ self.b[i]) * ah[sl, i]
        radar = proj @ self.a
        radar += nz[:, :scn.M] * np.sqrt(scn.noise_radar_w / 2.0)
        if D:
            self._x_hist, self._a_hist = xh[-D:], ah[-D:]
        radar = self._rx_impair(radar)
        if self.normalize:
            radar /= np.sqrt(scn.noise_radar_w)
            users /= np.sqrt(np.asarray(scn.noise_comm_w, float))
        self._target = bool(present[-1]) if present.size else self._target
        return users, radar, present

    def _rx_impair(self, r):
        imp = self.imp
        if imp.rx_gain is not None:
            r = r * imp.rx_gain
        if imp.cfo:
            r = r * np.exp(2j * np.pi * imp.cfo * (self._t + np.arange(r.shape[0])))[:, None]
        self._t += r.shape[0]
        if imp.rx_delay is not None and self._r_hist.shape[0]:
            r, self._r_hist = self._delay_chains(r, self._r_hist, imp.rx_delay)
        return r
