"""Per-chain complex gain, delay (integer + fractional) and phase of TX or RX chains [bench notes §5.1].

Error model of chain i (``embed``), for a capture sampled at n = 0..n_samples-1:

    y_i[n] = e^{j2π ε_i n} · g_i · x(n − d_i),

g_i ∈ C the complex gain at the carrier (|g_i| linear gain, ∠g_i the carrier phase), d_i ∈ R the delay
[samples] (integer + fractional, band-limited FFT-domain interpolation), ε_i the CFO [cycles/sample]
(0 for chains sharing the LO). TX chains are measured one at a time into a reference RX (loopback);
RX chains all at once from a splitter: in both cases the measurement is an array (n_chains, n_samples)
whose row i is the capture of the known preamble through chain i.

Estimation (``run``), per chain, from the cross spectrum R[k] = Y[k] X*[k] of the capture and the
known reference x (the preamble placed at ``offset``):

1. integer delay = peak of the circular cross-correlation ifft(R);
2. fractional delay = argmax_d |Σ_k R[k] e^{j2π f_k d}| on [d0 − 1, d0 + 1] (the ML delay estimate for
   white noise; equivalently the LS phase slope over frequency);
3. g = Σ_k R[k] e^{j2π f_k d} / Σ_k |X[k]|² (the LS gain, its phase is the phase at the carrier);
4. with ``max_cfo`` > 0: a CFO grid search first, then ε from the phase drift between the two halves
   of the preamble, and steps 1-3 on the de-rotated capture.

Correction (``apply``): de-rotate, divide by g_i, advance by d_i — the per-chain complex weight plus an
FFT-domain fractional-delay correction. CRB of the delay for a flat-spectrum preamble of length L at
per-sample SNR ρ: var(d) ≈ 3/(2π² L ρ) samples²; of the phase: var(∠g) ≈ 1/(2 L ρ) rad².
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from .base import Calibration, as_array, register
from .errors import CalibrationError
from .signals import frac_delay, zadoff_chu


@register
class ChainCal(Calibration):
    """Per-chain complex gain, delay and phase from a known Zadoff-Chu preamble.

    Parameters
    ----------
    n_chains : int
        Number of TX or RX chains.
    side : {"tx", "rx"}
        Which chains are calibrated (informative: the maths is the same; TX corrections are applied
        before the DAC as a pre-distortion, RX corrections after the ADC).
    preamble_len, root : int
        Zadoff-Chu length (prime is best) and root.
    offset : int
        Nominal start of the preamble in each capture [samples].
    n_samples : int
        Capture length [samples]; must leave more than the largest |delay| of zeros around the preamble.
    max_cfo : float
        Largest |CFO| searched [cycles/sample]; 0 = chains share the LO (no CFO estimated).
    reference : int or None
        If an index, gains/delays are reported relative to that chain (g_i/g_ref, d_i − d_ref).

    Coefficients: ``gain`` complex (n_chains,), ``delay`` float (n_chains,) [samples],
    ``cfo`` float (n_chains,) [cycles/sample].
    """

    kind = "ChainCal"

    def __init__(self, n_chains: int = 2, side: str = "rx", preamble_len: int = 1021, root: int = 25,
                 offset: int = 64, n_samples: int | None = None, max_cfo: float = 0.0,
                 reference: int | None = None):
        if not isinstance(n_chains, (int, np.integer)) or n_chains < 1:
            raise CalibrationError("n_chains", "an integer >= 1", n_chains)
        if side not in ("tx", "rx"):
            raise CalibrationError("side", "'tx' or 'rx'", repr(side))
        if not isinstance(offset, (int, np.integer)) or offset < 0:
            raise CalibrationError("offset", "an integer >= 0", offset)
        n_samples = int(preamble_len + 2 * offset) if n_samples is None else int(n_samples)
        if n_samples < preamble_len + offset:
            raise CalibrationError("n_samples", f"an integer >= preamble_len + offset = {preamble_len + offset}",
                                   n_samples)
        if not (0.0 <= float(max_cfo) < 0.5):
            raise CalibrationError("max_cfo", "a number in [0, 0.5) [cycles/sample]", max_cfo)
        if reference is not None and not (0 <= int(reference) < n_chains):
            raise CalibrationError("reference", f"None or a chain index in [0, {n_chains})", reference)
        super().__init__(n_chains=int(n_chains), side=side, preamble_len=int(preamble_len), root=int(root),
                         offset=int(offset), n_samples=n_samples, max_cfo=float(max_cfo),
                         reference=None if reference is None else int(reference))
        self.preamble = zadoff_chu(int(preamble_len), int(root))

    # -- stimulus ---------------------------------------------------------------------------------
    def stimulus(self) -> np.ndarray:
        """The ideal capture x, complex128 shape (n_samples,): zeros with the preamble at ``offset``."""
        p = self.params
        x = np.zeros(p["n_samples"], np.complex128)
        x[p["offset"]:p["offset"] + p["preamble_len"]] = self.preamble
        return x

    def _check_coefs(self, coefs):
        n = self.params["n_chains"]
        out = {"gain": as_array("gain", coefs["gain"], shape=(n,)),
               "delay": as_array("delay", coefs["delay"], shape=(n,), dtype=np.float64),
               "cfo": as_array("cfo", coefs.get("cfo", np.zeros(n)), shape=(n,), dtype=np.float64)}
        if np.any(out["gain"] == 0):
            raise CalibrationError("gain", "non-zero complex gains", out["gain"])
        return out

    # -- estimate ---------------------------------------------------------------------------------
    def _run(self, measurements):
        p = self.params
        y = as_array("measurements", measurements, shape=(p["n_chains"], p["n_samples"]))
        x = self.stimulus()
        n = p["n_samples"]
        X = np.fft.fft(x)
        f = np.fft.fftfreq(n)
        ex = float(np.sum(np.abs(X) ** 2))
        t = np.arange(n)
        gains, delays, cfos, res = [], [], [], []
        for i in range(p["n_chains"]):
            yi = y[i]
            eps = 0.0
            if p["max_cfo"] > 0:
                eps = self._coarse_cfo(yi, x, p["max_cfo"])
            for _ in range(3 if p["max_cfo"] > 0 else 1):
                yd = yi * np.exp(-2j * np.pi * eps * t)
                R = np.fft.fft(yd) * np.conj(X)
                corr = np.fft.ifft(R)
                d0 = int(np.argmax(np.abs(corr)))
                if d0 > n // 2:
                    d0 -= n

                def negpow(d, R=R):
                    return -abs(np.sum(R * np.exp(2j * np.pi * f * d)))

                d = float(minimize_scalar(negpow, bounds=(d0 - 1.0, d0 + 1.0), method="bounded",
                                          options={"xatol": 1e-7}).x)
                g = np.sum(R * np.exp(2j * np.pi * f * d)) / ex
                if p["max_cfo"] > 0:
                    eps += self._fine_cfo(yd, x, d, g)
            model = np.exp(2j * np.pi * eps * t) * g * frac_delay(x, d)
            res.append(np.sum(np.abs(yi - model) ** 2) / np.sum(np.abs(model) ** 2))
            gains.append(g)
            delays.append(d)
            cfos.append(eps)
        gains, delays, cfos = np.array(gains), np.array(delays), np.array(cfos)
        if p["reference"] is not None:
            r = p["reference"]
            gains, delays = gains / gains[r], delays - delays[r]
        res = np.array(res)
        residual = {"residual_db_max": float(10 * np.log10(max(res.max(), 1e-300))),
                    "snr_est_db_min": float(-10 * np.log10(max(res.max(), 1e-300)))}
        return {"gain": gains, "delay": delays, "cfo": cfos}, residual

    def _coarse_cfo(self, y, x, max_cfo):
        L = self.params["preamble_len"]
        grid = np.arange(-max_cfo, max_cfo + 1e-12, 0.5 / L)
        t = np.arange(y.size)
        X = np.conj(np.fft.fft(x))
        best = max(grid, key=lambda e: np.abs(np.fft.ifft(np.fft.fft(y * np.exp(-2j * np.pi * e * t)) * X)).max())
        return float(best)

    def _fine_cfo(self, yd, x, d, g):
        """Residual CFO from the phase drift between the two halves of the aligned preamble."""
        p = self.params
        xr = g * frac_delay(x, d)
        start = p["offset"] + int(np.floor(d))
        half = p["preamble_len"] // 2
        a = slice(max(start, 0), max(start, 0) + half)
        b = slice(a.start + half, a.start + 2 * half)
        z1 = np.vdot(xr[a], yd[a])
        z2 = np.vdot(xr[b], yd[b])
        return float(np.angle(z2 * np.conj(z1)) / (2 * np.pi * half))

    # -- apply / embed ----------------------------------------------------------------------------
    def _as_chains(self, x):
        n = self.params["n_chains"]
        x = as_array("x", x)
        if x.ndim == 1:
            x = np.broadcast_to(x, (n, x.size))
        if x.ndim != 2 or x.shape[0] != n:
            raise CalibrationError("x", f"shape (n_chains={n}, n_samples) or (n_samples,)", f"shape {x.shape}")
        return x

    def embed(self, x):
        """Impose the chain errors: y_i[n] = e^{j2π ε_i n} g_i x_i(n − d_i). ``x``: (n_chains, n) or (n,)."""
        c = self._need()
        x = self._as_chains(x)
        t = np.arange(x.shape[1])
        return np.exp(2j * np.pi * c["cfo"][:, None] * t) * c["gain"][:, None] * frac_delay(x, c["delay"])

    def apply(self, x):
        """Remove the chain errors (inverse of ``embed``): de-rotate, divide by g_i, advance by d_i."""
        c = self._need()
        x = self._as_chains(x)
        t = np.arange(x.shape[1])
        return frac_delay(x * np.exp(-2j * np.pi * c["cfo"][:, None] * t) / c["gain"][:, None], -c["delay"])

    def weights(self) -> np.ndarray:
        """Per-chain complex correction weights 1/g_i (for hardware phase/gain trims), shape (n_chains,)."""
        return 1.0 / self._need()["gain"]

    def _summary_rows(self):
        if self.coefs is None:
            return []
        c = self.coefs
        return [("gain [dB]", np.array2string(20 * np.log10(np.abs(c["gain"])), precision=3, separator=", ")),
                ("phase [deg]", np.array2string(np.degrees(np.angle(c["gain"])), precision=2, separator=", ")),
                ("delay [smp]", np.array2string(c["delay"], precision=4, separator=", ")),
                ("cfo [cyc/smp]", np.array2string(c["cfo"], precision=3, separator=", "))]


def compare_chains(est: dict, truth: dict) -> dict:
    """Errors of estimated chain coefficients against the truth: max over chains of |Δphase| [deg],
    |Δgain| [dB], |Δdelay| [samples]."""
    dphi = np.degrees(np.angle(est["gain"] / truth["gain"]))
    dg = 20 * np.log10(np.abs(est["gain"]) / np.abs(truth["gain"]))
    dd = np.asarray(est["delay"]) - np.asarray(truth["delay"])
    return {"phase_error_deg_max": float(np.max(np.abs(dphi))),
            "gain_error_db_max": float(np.max(np.abs(dg))),
            "delay_error_samples_max": float(np.max(np.abs(dd)))}
