"""Clutter/interference-plus-noise covariance for the STAP/MVDR filter from target-free frames.

Model (spec A.4): target-free snapshots r_f ~ CN(0, C), C = U Uᴴ + ξ_z² I (clutter of rank Q plus noise),
f = 1..F. Estimators:

* ``method="sample"``: Ĉ = (1/F) Σ_f r_f r_fᴴ + δ I, with diagonal loading δ = ``loading``·tr(Ĉ_0)/dim.
* ``method="lowrank"``: structured fit Ĉ = V_r (Λ_r − σ̂² I) V_rᴴ + σ̂² I from the eigen-decomposition of the
  sample covariance, σ̂² = mean of the dim − r smallest eigenvalues; r given, or chosen by MDL.

``embed(w)`` colours white snapshots, r = L w with C = L Lᴴ (Cholesky; rows of ``w`` are snapshots);
``apply(r)`` whitens, L⁻¹ r, so ``apply(embed(w)) == w``. Quality against the truth: covariance NMSE and
the MVDR SINR loss ρ = SINR(ŵ)/SINR* with ŵ = Ĉ⁻¹ s, whose mean for the unloaded sample covariance of F
Gaussian snapshots is (F + 2 − dim)/(F + 1) (Reed-Mallett-Brennan), the benchmark's independent check.
"""
from __future__ import annotations

import numpy as np
import scipy.linalg

from .base import Calibration, as_array, register
from .errors import CalibrationError


def mdl_rank(eigvals: np.ndarray, n_frames: int) -> int:
    """Wax-Kailath MDL estimate of the number of signal eigenvalues (eigvals in descending order)."""
    lam = np.maximum(np.sort(np.real(eigvals))[::-1], 1e-300)
    p = lam.size
    best, arg = np.inf, 0
    for k in range(p):
        tail = lam[k:]
        g = np.exp(np.mean(np.log(tail)))
        a = np.mean(tail)
        mdl = -n_frames * (p - k) * np.log(g / a) + 0.5 * k * (2 * p - k) * np.log(n_frames)
        if mdl < best:
            best, arg = mdl, k
    return int(arg)


def sinr_loss(C_est, C_true, s) -> float:
    """MVDR SINR loss SINR(ŵ)/SINR* ∈ (0, 1], ŵ = Ĉ⁻¹ s, SINR* = sᴴ C⁻¹ s (spec A.4, eq. (20))."""
    w = np.linalg.solve(C_est, s)
    sinr = np.abs(np.vdot(w, s)) ** 2 / np.real(np.vdot(w, C_true @ w))
    return float(sinr / np.real(np.vdot(s, np.linalg.solve(C_true, s))))


@register
class ClutterCovCal(Calibration):
    """Interference-plus-noise covariance C (dim, dim) from target-free frames (F, dim).

    Parameters
    ----------
    dim : int
        Snapshot length (M for spatial, M·L for space-time STAP).
    method : {"sample", "lowrank"}
    loading : float
        Relative diagonal loading δ/(tr Ĉ/dim) for ``sample`` (0 = none).
    rank : int or None
        Clutter rank for ``lowrank`` (None = MDL).

    Coefficients: ``C`` complex (dim, dim) Hermitian PD, ``noise_var`` (σ̂², ``lowrank`` only; else the
    smallest eigenvalue).
    """

    kind = "ClutterCovCal"

    def __init__(self, dim: int = 8, method: str = "sample", loading: float = 1e-3, rank: int | None = None):
        if not isinstance(dim, (int, np.integer)) or dim < 1:
            raise CalibrationError("dim", "an integer >= 1", dim)
        if method not in ("sample", "lowrank"):
            raise CalibrationError("method", "'sample' or 'lowrank'", repr(method))
        if not (np.isfinite(loading) and loading >= 0):
            raise CalibrationError("loading", "a finite number >= 0", loading)
        if rank is not None and not (0 <= int(rank) < dim):
            raise CalibrationError("rank", f"None or an integer in [0, {dim})", rank)
        super().__init__(dim=int(dim), method=method, loading=float(loading),
                         rank=None if rank is None else int(rank))

    def _check_coefs(self, coefs):
        d = self.params["dim"]
        C = as_array("C", coefs["C"], shape=(d, d))
        if not np.allclose(C, C.conj().T, atol=1e-10 * max(np.abs(C).max(), 1e-300)):
            raise CalibrationError("C", "a Hermitian matrix", "non-Hermitian")
        try:
            np.linalg.cholesky(C)
        except np.linalg.LinAlgError as exc:
            raise CalibrationError("C", "a positive-definite matrix", "not PD") from exc
        nv = coefs.get("noise_var", np.linalg.eigvalsh(C)[0])
        return {"C": C, "noise_var": np.asarray(float(np.real(nv)))}

    def _run(self, measurements):
        d, p = self.params["dim"], self.params
        R = as_array("measurements", measurements, ndim=2)
        if R.shape[1] != d:
            raise CalibrationError("measurements", f"frames of shape (F, dim={d})", f"shape {R.shape}")
        F = R.shape[0]
        if F < 1:
            raise CalibrationError("measurements", "at least one frame", "0 frames")
        S = R.T @ R.conj() / F                       # (1/F) Σ r rᴴ
        S = 0.5 * (S + S.conj().T)
        lam, V = np.linalg.eigh(S)
        if p["method"] == "sample":
            C = S + p["loading"] * np.real(np.trace(S)) / d * np.eye(d)
            nv = float(lam[0])
            rank = None
        else:
            lam_d, V_d = lam[::-1], V[:, ::-1]
            rank = p["rank"] if p["rank"] is not None else min(mdl_rank(lam_d, F), d - 1)
            nv = float(np.mean(lam_d[rank:]))
            C = (V_d[:, :rank] * np.maximum(lam_d[:rank] - nv, 0)) @ V_d[:, :rank].conj().T + nv * np.eye(d)
        if F < d and p["method"] == "sample" and p["loading"] == 0:
            raise CalibrationError("measurements", f"at least dim={d} frames without diagonal loading", f"{F}")
        res = {"n_frames": F, "min_eig": float(np.linalg.eigvalsh(C)[0])}
        if rank is not None:
            res["rank"] = rank
        return {"C": C, "noise_var": np.asarray(nv)}, res

    def _chol(self):
        return np.linalg.cholesky(self._need()["C"])

    def embed(self, w):
        """Colour white snapshots (rows of ``w``, (..., dim)): r = L w, C = L Lᴴ."""
        w = as_array("w", w)
        if w.shape[-1] != self.params["dim"]:
            raise CalibrationError("w", f"last dimension dim={self.params['dim']}", f"shape {w.shape}")
        return w @ self._chol().T

    def apply(self, r):
        """Whiten snapshots (rows of ``r``): L⁻¹ r."""
        r = as_array("r", r)
        if r.shape[-1] != self.params["dim"]:
            raise CalibrationError("r", f"last dimension dim={self.params['dim']}", f"shape {r.shape}")
        L = self._chol()
        flat = r.reshape(-1, r.shape[-1])
        out = scipy.linalg.solve_triangular(L, flat.T, lower=True).T
        return out.reshape(r.shape)

    def mvdr(self, s) -> np.ndarray:
        """MVDR weights w = C⁻¹ s / (sᴴ C⁻¹ s) (spec A.4 eq. (20))."""
        s = as_array("s", s, shape=(self.params["dim"],))
        w = np.linalg.solve(self._need()["C"], s)
        return w / np.vdot(s, w)

    def _summary_rows(self):
        if self.coefs is None:
            return []
        ev = np.linalg.eigvalsh(self.coefs["C"])[::-1]
        return [("C", f"{ev.size}x{ev.size}, eig {ev[0]:.3g} .. {ev[-1]:.3g}, tr {ev.sum():.3g}"),
                ("noise_var", f"{float(self.coefs['noise_var']):.4g}")]


def compare_cov(C_est, C_true, s=None) -> dict:
    """Covariance NMSE [dB] and (with a steering vector ``s``) the MVDR SINR loss [dB]."""
    out = {"cov_nmse_db": float(10 * np.log10(np.sum(np.abs(C_est - C_true) ** 2) / np.sum(np.abs(C_true) ** 2)))}
    if s is not None:
        out["sinr_loss_db"] = float(-10 * np.log10(sinr_loss(C_est, C_true, s)))
    return out
