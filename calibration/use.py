"""Using calibration files on the bench: TX pre-correction, streaming RX correction, key checks, and
paper-A channels estimated through the simulated bench (issue 8, "Use").

* :func:`load_chain_cal` — read a :class:`~calibration.chains.ChainCal` file for ``n_chains`` chains of one
  ``side`` and refuse it (:class:`StaleCalibrationError`, one line naming the changed key field) when the
  bench key (sample rate, LO, gains, hardware ids) differs from the file's.
* :class:`TxCorrection` — pre-distortion applied by ``slp_source``: chain i emits u_i[t] = x_i[t + d_i]/g_i
  so that after the chain (g_i, delay d_i) the antenna radiates x_i[t] (the inverse of ``ChainCal.embed``
  with ε = 0). Integer part of d_i by indexing the periodic frame stream, fractional part by a circular
  FFT interpolation of each frame (exact for a periodic stream).
* :class:`RxCorrector` — streaming inverse of the RX chains for ``stap_detector``: y_i[t] = x_i[t − e_i]/g_i
  with e_i = D − d_i ≥ 0 so that every chain carries the un-impaired signal delayed by the common latency D
  (an integer number of samples; the block shifts the stream tags by D). Delays within ``frac_tol`` of an
  integer are rounded; otherwise a windowed-sinc FIR (2H+1 taps) does the fractional part.
* :func:`bench_chain_truth` — the hidden chain impairments of the simulated bench for ``--impair-seed N``
  (what ``isac-testbed run --impair-seed N`` imposes and ``calibrate chains --impair-seed N`` measures).
* :func:`estimate_paper_a_channels` — paper-A channels estimated by pilots × Hadamard RIS sweep (see
  ``docs/calibration.md`` "Using calibrations" for how G / h_rk represent the estimated cascade).

Everything is vectorised over samples (loops only over chains or filter taps).
"""
from __future__ import annotations

import json
import math

import numpy as np

from .chains import ChainCal
from .errors import CalibrationError
from .signals import frac_delay

SIM_SDR = "sim://"
MAX_CHAIN_DELAY = 4096        # |d_i| [samples]: far above any cable/FPGA latency; the RX FIR and the
                              # TX index shift grow with it, so 1e12 would hang or exhaust memory
MAX_GAIN_DB = 120.0           # |20 log10 |g_i|| [dB]: a wider spread is a broken file, not a chain


def check_chain_coefs(coefs: dict, where: str = "calibration") -> None:
    """Bounds of ChainCal coefficients the streaming corrections can use (one-line CalibrationError)."""
    g = np.asarray(coefs["gain"])
    d = np.asarray(coefs["delay"], np.float64)
    if d.size and np.max(np.abs(d)) > MAX_CHAIN_DELAY:
        raise CalibrationError(f"{where}: delay", f"|delay| <= {MAX_CHAIN_DELAY} samples",
                               f"{float(np.max(np.abs(d))):.6g}")
    gdb = 20 * np.log10(np.abs(g))
    if g.size and np.max(np.abs(gdb)) > MAX_GAIN_DB:
        raise CalibrationError(f"{where}: gain", f"|gain| within ±{MAX_GAIN_DB:g} dB", f"{float(gdb[np.argmax(np.abs(gdb))]):.6g} dB")


# ------------------------------------------------------------------------------------------- keys
def sim_sdr_id(impair_seed: int | None) -> str:
    """Hardware id of the simulated bench's chains: ``sim://`` (ideal) or ``sim://chains?impair_seed=N``."""
    return SIM_SDR if impair_seed is None else f"sim://chains?impair_seed={int(impair_seed)}"


def bench_key(*, sdr: str, fs_hz: float, lo_hz: float, gains_db=None) -> dict:
    """The key a bench run expects of its calibration files (``date`` is not compared)."""
    key = {"hardware_ids": {"sdr": str(sdr)}, "fs_hz": float(fs_hz), "lo_hz": float(lo_hz)}
    if gains_db is not None and len(np.atleast_1d(gains_db)):
        key["gains_db"] = [float(g) for g in np.atleast_1d(gains_db)]
    return key


def parse_key(v) -> dict | None:
    """A block's ``cal_key`` parameter: a dict, a JSON string, or ''/None/{} (= no key check)."""
    if v is None or (isinstance(v, str) and not v.strip()):
        return None
    if isinstance(v, str):
        try:
            v = json.loads(v)
        except json.JSONDecodeError as exc:
            raise CalibrationError("cal_key", "a dict or a JSON object string", repr(v)) from exc
    if not isinstance(v, dict):
        raise CalibrationError("cal_key", "a dict or a JSON object string", type(v).__name__)
    return v or None


def load_chain_cal(path, *, n_chains: int, side: str, expect_key: dict | None = None,
                   who: str = "calibration") -> ChainCal:
    """Read a ChainCal file and check it against the bench: chain count, side and key.

    Raises :class:`StaleCalibrationError` (message prefixed by ``who`` and the path, one line) when a key
    field differs, :class:`CalibrationError` for a wrong kind / chain count / side.
    """
    from . import store
    try:
        doc, raw = store.load(path)
        if not isinstance(raw.get("gain"), np.ndarray) or not np.iscomplexobj(raw["gain"]):
            # a measured chain gain has a phase; real values mean a hand-made or damaged file
            raise CalibrationError("gain", "complex gains (magnitude and phase; a ChainCal measures both)",
                                   f"dtype {getattr(raw.get('gain'), 'dtype', None)}")
        cal = ChainCal.load(path, expect_key=expect_key)
        check_chain_coefs(cal.coefs, "coefs")
    except CalibrationError as exc:
        exc.args = (f"{who}: {path}: {exc}",)
        raise
    p = cal.params
    if p["n_chains"] != int(n_chains):
        raise CalibrationError(f"{who}: {path}: n_chains", f"{n_chains} chains (the bench's)", p["n_chains"])
    if p["side"] != side:
        raise CalibrationError(f"{who}: {path}: side", repr(side), repr(p["side"]))
    if np.any(np.abs(cal.coefs["cfo"]) > 0):
        raise CalibrationError(f"{who}: {path}: cfo", "0 (chains sharing the LO; CFO is not corrected "
                               "by the streaming blocks)", cal.coefs["cfo"])
    return cal


# ------------------------------------------------------------------------------------ sim truth
def bench_chain_truth(impair_seed: int, n_chains: int, side: str, *, max_delay: int = 3,
                      gain_db_spread: float = 2.0) -> dict:
    """Hidden chain impairments of the simulated bench: gain ±``gain_db_spread`` dB, phase U(−π, π),
    INTEGER delay in 0..``max_delay`` samples (the emulator's delays are integer), no CFO.
    Deterministic in (impair_seed, side)."""
    if side not in ("tx", "rx"):
        raise CalibrationError("side", "'tx' or 'rx'", repr(side))
    rng = np.random.default_rng([int(impair_seed), 0 if side == "tx" else 1])
    gain = 10 ** (rng.uniform(-gain_db_spread, gain_db_spread, n_chains) / 20) \
        * np.exp(1j * rng.uniform(-np.pi, np.pi, n_chains))
    delay = rng.integers(0, int(max_delay) + 1, n_chains).astype(np.float64)
    return {"gain": gain, "delay": delay, "cfo": np.zeros(n_chains)}


def emulator_impairments(tx: dict | None, rx: dict | None):
    """``isac_opt.bench.channel.Impairments`` imposing the chain truths ``tx``/``rx`` (integer delays)."""
    from isac_opt.bench.channel import Impairments
    rint = lambda d: np.round(np.asarray(d, np.float64)).astype(np.int64)  # noqa: E731
    return Impairments(tx_gain=None if tx is None else np.asarray(tx["gain"], np.complex128),
                       tx_delay=None if tx is None else rint(tx["delay"]),
                       rx_gain=None if rx is None else np.asarray(rx["gain"], np.complex128),
                       rx_delay=None if rx is None else rint(rx["delay"]))


# ------------------------------------------------------------------------------------- TX side
class TxCorrection:
    """TX pre-distortion from a ChainCal: u_i[t] = x_i[t + d_i] / g_i (see module docstring).

    Attributes: ``weights`` (M,) = 1/g_i, ``shift`` (M,) int = round(d_i), ``frac`` (M,) = d_i − shift.
    """

    def __init__(self, cal: ChainCal):
        c = cal._need()
        check_chain_coefs(c)
        self.weights = 1.0 / np.asarray(c["gain"], np.complex128)
        d = np.asarray(c["delay"], np.float64)
        self.shift = np.round(d).astype(np.int64)
        self.frac = d - self.shift
        self.M = self.weights.size

    def correct_frames(self, stack: np.ndarray) -> np.ndarray:
        """Weights and fractional advance of a frame stack (..., F, M) (circular over F = periodic stream)."""
        s = np.asarray(stack, np.complex128) * self.weights
        if np.any(np.abs(self.frac) > 1e-12):
            s = frac_delay(s, -self.frac, axis=-2)          # delay (M,) broadcasts over (..., M, F)
        return s

    def indices(self, t: np.ndarray) -> np.ndarray:
        """Source sample index of each chain for output samples t (n,): (n, M) = t + shift."""
        return np.asarray(t, np.int64)[:, None] + self.shift[None, :]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Pure-function form on a block x (M, n): u_i[t] = x_i[t + d_i]/g_i, circular like
        ``ChainCal.apply`` (pad x with more than max|d| zeros for a linear shift); ``embed(apply(x)) == x``."""
        x = np.asarray(x, np.complex128)
        return frac_delay(x * self.weights[:, None], -(self.shift + self.frac))


# ------------------------------------------------------------------------------------- RX side
class RxCorrector:
    """Streaming RX chain correction y_i[t] = x_i[t − e_i]/g_i, e_i = D − d_i (see module docstring).

    Parameters
    ----------
    cal : ChainCal (side "rx")
    frac_tol : float
        Delays within this many samples of an integer are rounded (default 0.05).
    half_taps : int
        H of the windowed-sinc FIR used when a delay is fractional.
    """

    def __init__(self, cal: ChainCal, frac_tol: float = 0.05, half_taps: int = 8):
        c = cal._need()
        check_chain_coefs(c)
        self.weights = 1.0 / np.asarray(c["gain"], np.complex128)
        d = np.asarray(c["delay"], np.float64)
        self.M = d.size
        self.fractional = bool(np.any(np.abs(d - np.round(d)) > frac_tol))
        if not self.fractional:
            d = np.round(d)
            self.latency = int(max(0, np.max(d))) if d.size else 0
            e = (self.latency - d).astype(np.int64)
            self.taps = None
            self.n_taps = int(e.max()) + 1 if e.size else 1
            self.e = e
        else:
            H = int(half_taps)
            self.latency = int(math.ceil(max(0.0, float(np.max(d))))) + H
            e = self.latency - d                                          # >= H
            self.n_taps = int(math.ceil(float(e.max()))) + H + 1
            k = np.arange(self.n_taps)[None, :] - e[:, None]              # (M, taps)
            win = np.where(np.abs(k) < H + 1, np.cos(np.pi * k / (2 * (H + 1))) ** 2, 0.0)
            self.taps = np.sinc(k) * win                                  # (M, taps)
            self.e = e
        self._hist = np.zeros((self.n_taps - 1, self.M), np.complex128)

    def reset(self) -> None:
        self._hist[:] = 0

    def process(self, x: np.ndarray) -> np.ndarray:
        """Correct n samples x (n, M) (continuing the stream); returns complex128 (n, M)."""
        x = np.asarray(x, np.complex128)
        n = x.shape[0]
        xe = np.vstack([self._hist, x])
        h = self.n_taps - 1
        if self.taps is None:
            rows = h - self.e[None, :] + np.arange(n)[:, None]
            y = xe[rows, np.arange(self.M)[None, :]]
        else:
            y = np.zeros((n, self.M), np.complex128)
            for k in range(self.n_taps):                                  # loop over taps, not samples
                y += self.taps[:, k] * xe[h - k:h - k + n]
        if h:
            self._hist = xe[-h:].copy()
        return y * self.weights


def rx_correct(cal: ChainCal, y: np.ndarray) -> np.ndarray:
    """Pure-function RX correction of a block y (M, n): ``ChainCal.apply`` (circular FFT delay)."""
    return cal.apply(y)


# --------------------------------------------------------------------------- paper-A channels
def estimate_paper_a_channels(scn, seed: int, *, snr_db: float = 20.0, codebook: str = "hadamard",
                              meas_seed: int | None = None):
    """Estimate the user channels of paper A's realisation ``seed`` through the simulated bench.

    The hidden truth is the realisation the design methods draw (``draw_channels(scn,
    realisation_rng(seed, 0))``). Per RIS configuration of a Hadamard (1-bit, ideal ±1 reflection) or DFT
    sweep, the K users receive M orthogonal pilots; per slot LS gives H_t (K, M) and the affine/linear LS of
    :class:`RisCascadeCal` gives h̃_d = conj(h_k) (K, M) and the cascade c_n = conj(h_rk[:, n]) G[n, :]
    (N, K, M). G (BS→RIS) and the target/clutter LoS come from the geometry (deployment), so h_rk is the LS
    fit of the cascade on the known G rows: conj(h_rk[k, n]) = c_n[k, :] G[n, :]ᴴ / ‖G[n, :]‖².

    Returns ``(estimate ChannelsA, truth ChannelsA, report dict)``.
    """
    from isac_opt.paper_a.channels import ChannelsA, draw_channels, realisation_rng, target_clutter_los
    from .channels import RisCascadeCal, nmse_db
    from .sim_bench import measure_ris_cascade

    truth = draw_channels(scn, realisation_rng(seed, 0))
    K, M, N = scn.K, scn.M, scn.N
    direct = np.conj(truth.h_k)                                            # (K, M)
    cascade = np.conj(truth.h_rk).T[:, :, None] * truth.G[:, None, :]      # (N, K, M)
    cal = RisCascadeCal(n_elements=N, entry_shape=(K, M), codebook=codebook, seed=int(seed))
    table = np.tile(np.array([1.0, -1.0], np.complex128), (N, 1))          # ideal 1-bit: 0 -> +1, 1 -> -1
    rng = np.random.default_rng([int(seed), 0xCA1 if meas_seed is None else int(meas_seed)])
    run = measure_ris_cascade(cal, {"direct": direct, "cascade": cascade}, table, snr_db, rng)
    cal.run(run.data)
    if cal.affine:                      # h_d' = h_d + Σ c_n Γ0, b_n = c_n (Γ1 − Γ0)
        c_hat = cal.coefs["cascade"] / (table[:, 1] - table[:, 0])[:, None, None]
        d_hat = cal.coefs["direct"] - np.sum(c_hat * table[:, 0][:, None, None], axis=0)
    else:
        c_hat, d_hat = cal.coefs["cascade"], cal.coefs["direct"]
    G = truth.G
    gn = np.sum(np.abs(G) ** 2, axis=1)                                    # (N,)
    if np.any(gn == 0):
        raise CalibrationError("G", "non-zero BS→RIS rows (the cascade is fitted on G)", "a zero row")
    hr_conj = np.einsum("nkm,nm->kn", c_hat, np.conj(G)) / gn[None, :]     # conj(h_rk) (K, N)
    fit = hr_conj.T[:, :, None] * G[:, None, :]
    los = target_clutter_los(scn)
    est = ChannelsA(G=G.astype(np.complex128), h_bt=los["h_bt"], h_rt=los["h_rt"], h_bq=los["h_bq"],
                    h_rq=los["h_rq"], h_k=np.conj(d_hat), h_rk=np.conj(hr_conj), S=truth.S).check(scn)
    report = {"seed": int(seed), "snr_db": float(snr_db), "codebook": codebook,
              "n_slots": int(cal.params["n_slots"]),
              "direct_nmse_db": nmse_db(d_hat, direct), "cascade_nmse_db": nmse_db(c_hat, cascade),
              "cascade_fit_nmse_db": nmse_db(fit, c_hat), "h_rk_nmse_db": nmse_db(est.h_rk, truth.h_rk)}
    return est, truth, report
