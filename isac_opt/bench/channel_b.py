"""Simulated channel of paper B (multi-pulse, multi-active-RIS STAP) for the bench [spec B.3, B.5].

Per CPI (coherent processing interval of P_c pulses of L slots), with the transmit block
X (P_c, L, N_t) (``X[p, l] = x_p[l]``, spec D.1) and the RIS coefficients φ (R, N):

* radar, per pulse p [spec B.3 (7)–(10)]: Y_p = α_t Σ_π d_π[p] H_π(φ) X_p J_Δπ
  + Σ_q α_q Σ_π H_qπ(φ) X_p J_Δqπ + N_p + V_p, returned as Y (P_c, L_r, N_r) (``Y[p, j]`` = snapshot j
  of pulse p). The noise-free part is computed with :func:`isac_opt.paper_b.model.apply_response` on the
  legs of :func:`isac_opt.paper_b.model.path_legs` (the same operators as T(φ)x and C_q(φ)x). Units: the
  model's receive legs are divided by σ_r, so N_p ~ CN(0, I) and V_p = Σ_r Gn_r Φ_r v_{r,p},
  v ~ CN(0, I_N) i.i.d. over elements, snapshots and pulses (Gn = (σ_v/σ_r) G̃); the noise covariance is
  I ⊗ B_v/σ_r² (:meth:`Model.noise_block`).
* users [spec B.5 (20)]: z_{k,n} = h̃_kᴴ(φ) x_n + e_{k,n}, n = pL + l, e ~ CN(0, ν_k) with
  ν_k = :func:`isac_opt.paper_b.model.user_noise` (σ_k² plus the active-RIS noise when enabled; drawn
  independently of V_p). Returned as (P_c L, K); with ``normalize_users`` divided by σ_k.
* RCS per CPI: ``rcs="fresh"``: α_t ~ CN(0, σ_t²), α_q ~ CN(0, σ_q²) drawn per CPI; ``"fixed"``:
  α_t = σ_t, α_q = σ_q. α_t = 0 in CPIs where the target is off (``target_mode`` on / off / alternate
  (even CPI index) / random (p = 1/2)).

Randomness: one ``rng.standard_normal((n, D))`` draw per batch of n CPIs, D numbers per CPI in the fixed
order [α (2(1+Q)), target coin (1), N (2 P_c L_r N_r), v (2 P_c L_r R N), e (2 P_c L K)] (the noise parts
only when ``noise=True``), so a stream processed CPI by CPI or in any batching gives identical samples.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..paper_b.model import ChannelsB, apply_response, effective_channels, path_legs, user_noise

TARGET_MODES = ("on", "off", "alternate", "random")
RCS_MODES = ("fresh", "fixed")


def coerce_phi(phi, R: int, N: int, name: str = "phi") -> np.ndarray:
    """RIS coefficients as complex128 (R, N): accepts (R, N) or a flat vector of R·N values (RIS 0 first)."""
    a = np.asarray(phi, dtype=np.complex128)
    if a.size != R * N:
        raise ValueError(f"{name}: expected {R}x{N} = {R * N} RIS coefficients (R RISs of N elements), "
                         f"got shape {a.shape}")
    a = a.reshape(R, N)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: RIS coefficients must be finite")
    return a


def coerce_cpis(X, Pc: int, L: int, Nt: int, name: str = "X") -> np.ndarray:
    """Transmit blocks as complex128 (n, P_c, L, N_t) from (P_c, L, N_t), (n, P_c, L, N_t) or stream items
    (n P_c L, N_t) (pulse after pulse, slot after slot)."""
    a = np.asarray(X)
    per = Pc * L * Nt
    if a.ndim < 2 or a.shape[-1] != Nt or a.size % per:
        raise ValueError(f"{name}: expected whole CPIs of P_c*L = {Pc}*{L} slots of N_t = {Nt} antennas "
                         f"(shape (n, {Pc}, {L}, {Nt}) or (n*{Pc * L}, {Nt})), got shape {a.shape}")
    return a.astype(np.complex128, copy=False).reshape(-1, Pc, L, Nt)


def _batched_legs(legs, n: int):
    """Path legs with the slow-time vectors tiled over n CPIs (so apply_response runs on n·P_c pulses)."""
    return [(rho, tau, dl, np.tile(d, n)) for rho, tau, dl, d in legs]


def echoes(ch: ChannelsB, X, phi) -> tuple[np.ndarray, np.ndarray]:
    """Noise-free unit-RCS echoes of n CPIs: (T(φ)x, C_q(φ)x) [spec B.3 (11)–(17)].

    X : complex (n, P_c, L, N_t); phi : complex (R, N).
    Returns t (n, P_c, L_r, N_r) and c (n, Q, P_c, L_r, N_r) (each equal, CPI by CPI, to
    :meth:`Model.target` and :meth:`Model.clutter`).
    """
    X = coerce_cpis(X, ch.Pc, ch.L, ch.Nt)
    phi = coerce_phi(phi, ch.R, ch.N)
    n = X.shape[0]
    flat = X.reshape(n * ch.Pc, ch.L, ch.Nt)
    shp = (n, ch.Pc, ch.Lr, ch.Nr)
    t = apply_response(_batched_legs(path_legs(ch.target, phi), n), flat, ch.Lr).reshape(shp)
    c = np.zeros((n, ch.Q) + shp[1:], np.complex128)
    for q, s in enumerate(ch.clutter):
        c[:, q] = apply_response(_batched_legs(path_legs(s, phi), n), flat, ch.Lr).reshape(shp)
    return t, c


def ris_noise(ch: ChannelsB, phi, v) -> np.ndarray:
    """V = Σ_r Gn_r Φ_r v_r for RIS noise samples v (..., R, N) → (..., N_r) [spec B.3]."""
    phi = coerce_phi(phi, ch.R, ch.N)
    if ch.R == 0:
        return np.zeros(np.shape(v)[:-2] + (ch.Nr,), np.complex128)
    return np.einsum("rmn,...rn->...m", ch.Gn * phi[:, None, :], v)


def target_schedule(mode: str, cpi_idx, coin) -> np.ndarray:
    """Target present per CPI: on / off / alternate (even CPI index) / random (coin > 0, p = 1/2)."""
    cpi_idx = np.asarray(cpi_idx, np.int64)
    if mode == "on":
        return np.ones(cpi_idx.shape, bool)
    if mode == "off":
        return np.zeros(cpi_idx.shape, bool)
    if mode == "alternate":
        return cpi_idx % 2 == 0
    if mode == "random":
        return np.asarray(coin) > 0
    raise ValueError(f"target_mode: expected one of {TARGET_MODES}, got {mode!r}")


@dataclass
class CpiOutput:
    """Output of :meth:`ChannelB.process` for n CPIs.

    radar : complex128 (n, P_c, L_r, N_r), unit receiver-noise units; users : complex128 (n, P_c L, K)
    (slot n = pL + l; divided by σ_k when normalised); present : bool (n,); alpha : complex128 (n, 1 + Q)
    the RCS [α_t, α_1..α_Q] used (α_t = 0 when absent); cpi : int64 (n,) CPI indices.
    """

    radar: np.ndarray
    users: np.ndarray
    present: np.ndarray
    alpha: np.ndarray
    cpi: np.ndarray


class ChannelB:
    """Paper B's channel, CPI by CPI (see the module docstring) [spec B.3, B.5].

    Parameters
    ----------
    ch : ChannelsB — the realisation (e.g. ``DesignB.channels`` of a loaded design file)
    phi : complex (R, N) or (R N,) — RIS coefficients applied (the design's φ or an override)
    rng : np.random.Generator — all draws (RCS, target coin, noises)
    target_mode : "on" | "off" | "alternate" | "random"; rcs : "fresh" | "fixed"
    noise : bool — add receiver, active-RIS and user noise (False: noise-free echoes)
    normalize_users : bool — divide user k's stream by σ_k; tx_scale : amplitude scale divided out of X
    """

    def __init__(self, ch: ChannelsB, phi, rng: np.random.Generator, *, target_mode: str = "alternate",
                 rcs: str = "fresh", noise: bool = True, normalize_users: bool = True, tx_scale: float = 1.0):
        if not isinstance(rng, np.random.Generator):
            raise TypeError("rng: expected a numpy.random.Generator")
        if target_mode not in TARGET_MODES:
            raise ValueError(f"target_mode: expected one of {TARGET_MODES}, got {target_mode!r}")
        if rcs not in RCS_MODES:
            raise ValueError(f"rcs: expected one of {RCS_MODES}, got {rcs!r}")
        if not float(tx_scale) > 0:
            raise ValueError(f"tx_scale: expected > 0, got {tx_scale}")
        self.ch, self.rng = ch, rng
        self.target_mode, self.rcs, self.noise = target_mode, rcs, bool(noise)
        self.normalize_users, self.tx_scale = bool(normalize_users), float(tx_scale)
        self.sig = np.sqrt(np.r_[ch.sigma_t_sq, np.asarray(ch.sigma_q_sq, float)])
        self.next_cpi = 0
        self.set_phi(phi)
        Pc, Lr, L = ch.Pc, ch.Lr, ch.L
        sizes = [2 * (1 + ch.Q), 1]
        if self.noise:
            sizes += [2 * Pc * Lr * ch.Nr, 2 * Pc * Lr * ch.R * ch.N, 2 * Pc * L * ch.K]
        self._cuts = np.cumsum([0] + sizes)

    @property
    def cpi_in(self) -> int:
        """Input items (slots, vlen N_t) per CPI: P_c L."""
        return self.ch.Pc * self.ch.L

    @property
    def cpi_radar(self) -> int:
        """Radar output items (snapshots, vlen N_r) per CPI: P_c L_r."""
        return self.ch.Pc * self.ch.Lr

    def set_phi(self, phi) -> None:
        """Apply RIS coefficients (R, N) (or R·N flat) from the next CPI on."""
        ch = self.ch
        self.phi = coerce_phi(phi, ch.R, ch.N)
        self.Htil = effective_channels(ch, self.phi)                 # (K, N_t)
        self.nu = user_noise(ch, self.phi)                          # (K,)

    def _cn(self, z, i: int) -> np.ndarray:
        a, b = self._cuts[i], self._cuts[i + 1]
        return np.ascontiguousarray(z[:, a:b]).view(np.complex128) / np.sqrt(2.0)

    def process(self, X, cpi_idx=None, alpha=None) -> CpiOutput:
        """Run n CPIs through the channel.

        X : transmit samples as emitted (times ``tx_scale``), (n, P_c, L, N_t) or (n P_c L, N_t).
        cpi_idx : int (n,) CPI indices (default: consecutive from the last one; drive ``alternate``).
        alpha : optional complex (n, 1+Q) RCS override [α_t, α_q] (the drawn ones are then ignored;
        the target schedule still zeroes α_t).
        """
        ch = self.ch
        X = coerce_cpis(X, ch.Pc, ch.L, ch.Nt) / self.tx_scale
        n = X.shape[0]
        cpi = np.arange(self.next_cpi, self.next_cpi + n) if cpi_idx is None else np.asarray(cpi_idx, np.int64)
        if cpi.shape != (n,):
            raise ValueError(f"cpi_idx: expected {n} CPI indices, got shape {cpi.shape}")
        self.next_cpi = int(cpi[-1]) + 1 if n else self.next_cpi
        z = self.rng.standard_normal((n, int(self._cuts[-1])))
        if alpha is not None:
            al = np.asarray(alpha, np.complex128)
            if al.shape != (n, 1 + ch.Q):
                raise ValueError(f"alpha: expected shape ({n}, {1 + ch.Q}), got {al.shape}")
            al = al.copy()
        elif self.rcs == "fixed":
            al = np.tile(self.sig.astype(np.complex128), (n, 1))
        else:
            al = self._cn(z, 0) * self.sig
        present = target_schedule(self.target_mode, cpi, z[:, self._cuts[1]])
        al[:, 0] *= present
        t, c = echoes(ch, X, self.phi)
        Y = al[:, 0, None, None, None] * t + np.einsum("nq,nqplm->nplm", al[:, 1:], c)
        users = X.reshape(n, ch.Pc * ch.L, ch.Nt) @ self.Htil.T              # (n, P_c L, K)
        if self.noise:
            shp = (n, ch.Pc, ch.Lr)
            Y += self._cn(z, 2).reshape(shp + (ch.Nr,))
            if ch.R:
                Y += ris_noise(ch, self.phi, self._cn(z, 3).reshape(shp + (ch.R, ch.N)))
            users += self._cn(z, 4).reshape(n, ch.Pc * ch.L, ch.K) * np.sqrt(self.nu)
        if self.normalize_users:
            users /= np.sqrt(np.asarray(ch.noise_comm_w, float))
        return CpiOutput(Y, users, present, al, cpi)


def covariance(ch: ChannelsB, X, phi) -> np.ndarray:
    """Dense target-absent covariance R = Σ_q σ_q² c_q c_qᴴ + I ⊗ B_v/σ_r² of one CPI [spec B.4 (28)].

    For small scenarios (tests, diagnostics): (P_c L_r N_r)² entries. X (P_c, L, N_t), phi (R, N).
    """
    from ..paper_b.model import Model
    _, c = echoes(ch, X, phi)
    C = c[0].reshape(ch.Q, -1)
    Rm = np.kron(np.eye(ch.Pc * ch.Lr), Model(ch).noise_block(coerce_phi(phi, ch.R, ch.N)))
    return Rm + (C.T * np.asarray(ch.sigma_q_sq, float)) @ C.conj()


def measure_scnr(design, n_cpi: int = 400, seed: int = 0, *, chunk: int = 64, progress: bool = False) -> dict:
    """Measured vs designed SCNR of a paper-B design through :class:`ChannelB` [spec B.4 (19)].

    Runs ``n_cpi`` CPIs of the design's X (target present in even CPIs, fresh RCS, all noises on),
    applies the design's filter W and the matched filter w = t, and compares mean|wᴴy|² under H1 / H0
    − 1 with σ_t²|wᴴt|²/(wᴴRw) (:meth:`Model.scnr`); intervals are the exact 99.9 % F intervals of
    :func:`isac_opt.bench.stap.estimate_sinr`. ``design``: a :class:`DesignB` or a design-file path.
    Returns {"design": {...}, "matched": {...}} with designed_db, sinr_db, lo_db, hi_db, n0, n1.
    """
    from ..paper_b.model import Model
    from .stap import estimate_sinr
    if not hasattr(design, "channels"):
        from ..paper_b.design import load
        design = load(design)
    ch, X, phi = design.channels, design.X, design.phi
    if int(n_cpi) < 2:
        raise ValueError(f"n_cpi: expected >= 2, got {n_cpi}")
    m = Model(ch)
    t = m.target(X, phi)
    filters = {"design": design.W.reshape(-1), "matched": t.reshape(-1)}
    chan = ChannelB(ch, phi, np.random.default_rng(int(seed)), target_mode="alternate", rcs="fresh")
    stats = {k: [] for k in filters}
    present = []
    steps = range(0, int(n_cpi), int(chunk))
    if progress:
        from tqdm import tqdm
        steps = tqdm(steps, desc="CPIs", unit="chunk")
    for s in steps:
        k = min(int(chunk), int(n_cpi) - s)
        out = chan.process(np.broadcast_to(X, (k,) + X.shape))
        Y = out.radar.reshape(k, -1)
        for name, w in filters.items():
            stats[name].append(np.abs(Y @ np.conj(w)) ** 2)
        present.append(out.present)
    present = np.concatenate(present)
    res = {}
    for name, w in filters.items():
        T = np.concatenate(stats[name])
        est = estimate_sinr(T[~present], T[present], conf=0.999)
        est["designed_db"] = float(10 * np.log10(m.scnr(w.reshape(t.shape), X, phi)))
        res[name] = est
    return res


def _main(argv=None) -> int:
    import argparse
    import json
    ap = argparse.ArgumentParser(prog="python -m isac_opt.bench.channel_b",
                                 description="Measured vs designed SCNR of a paper-B design through the "
                                             "simulated paper-B channel (the ris_isac_channel_b block's core).")
    ap.add_argument("design", help="paper-B design file (.npz)")
    ap.add_argument("--cpis", type=int, default=400, help="CPIs (half with the target) [default 400]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    res = measure_scnr(a.design, a.cpis, a.seed, progress=not a.json)
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        for name, r in res.items():
            print(f"{name:8s} filter: designed SCNR {r['designed_db']:7.2f} dB, measured {r['sinr_db']:7.2f} dB "
                  f"[{r['lo_db']:.2f}, {r['hi_db']:.2f}] (99.9 %, n0 = {r['n0']}, n1 = {r['n1']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
