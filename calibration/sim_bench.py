"""Simulated calibration bench: hidden random impairments, known stimuli, AWGN, and the exposed truth.

Every draw uses an explicit ``np.random.Generator``. Impairments are imposed with the estimators' own
``embed`` (style guide point 7), so the bench and the estimators share one error model:

* chains: per-chain gain (±``gain_db_spread`` dB), phase U(−π, π), delay U(−``max_delay``, ``max_delay``)
  samples (integer + fractional), optional CFO U(−``cfo_max``, ``cfo_max``) cycles/sample;
* channels: Rayleigh direct channel H and per-element cascaded channels c_n;
* RIS: non-ideal 1-bit states, state 0 at 0°, state 1 at 160°, each ± ``phase_sd_deg`` per element,
  amplitude −1 dB / −3 dB ± ``amp_sd_db`` (an OpenSourceRIS-like board, bench notes §4.1, §5.2);
* clutter: Q point clutters on a λ/2 ULA, clutter-to-noise ratios U(20, 30) dB (spec A.4's C = U Uᴴ + ξ_z² I).

SNR convention: per-sample SNR at the receiver of the known stimulus (chains: |g_i|²/σ_i² for the unit-modulus
preamble; channels: mean received power per antenna and pilot symbol over σ²; RIS table: mean |y_t|²/σ²).

:func:`calibrate_sim` runs one whole calibration (measure → estimate → compare with the truth), which is
what ``isac-testbed calibrate <what> --backend sim`` and the benchmark call.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .channels import DirectChannelCal, RisCascadeCal, affine_truth, ls_channel, nmse_db
from .chains import ChainCal, compare_chains
from .clutter import ClutterCovCal, compare_cov
from .errors import CalibrationError
from .ris_states import RisStateCal, compare_tables, scan_response


def _awgn(rng: np.random.Generator, shape, var) -> np.ndarray:
    var = np.asarray(var, dtype=np.float64)
    return np.sqrt(var / 2) * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape))


def _crandn(rng, shape, scale=1.0):
    return scale * (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)


@dataclass
class BenchRun:
    """One simulated measurement: ``data`` (what the hardware would deliver), ``truth`` (hidden
    coefficients in the estimator's names), ``noise_var`` and set-up ``extra`` (e.g. element responses)."""

    data: np.ndarray
    truth: dict
    noise_var: float | np.ndarray
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------------------------------------ chains
def draw_chain_truth(rng: np.random.Generator, n_chains: int, *, max_delay: float = 8.0,
                     gain_db_spread: float = 3.0, cfo_max: float = 0.0) -> dict:
    """Hidden chain errors: ``gain`` complex (n,), ``delay`` float (n,) [samples], ``cfo`` (n,) [cycles/sample]."""
    gain = 10 ** (rng.uniform(-gain_db_spread, gain_db_spread, n_chains) / 20) \
        * np.exp(1j * rng.uniform(-np.pi, np.pi, n_chains))
    delay = rng.uniform(-max_delay, max_delay, n_chains)
    cfo = rng.uniform(-cfo_max, cfo_max, n_chains) if cfo_max > 0 else np.zeros(n_chains)
    return {"gain": gain, "delay": delay, "cfo": cfo}


def measure_chains(cal: ChainCal, truth: dict, snr_db: float, rng: np.random.Generator) -> BenchRun:
    """Send the preamble through each chain (one TX at a time, or a splitter into all RX) plus AWGN."""
    if cal.params["offset"] <= np.max(np.abs(truth["delay"])) + 8:
        raise CalibrationError("offset", f"more zeros around the preamble than the largest delay "
                               f"{np.max(np.abs(truth['delay'])):.1f} + 8 samples", cal.params["offset"])
    clean = ChainCal.from_coefs(truth, **cal.params).embed(cal.stimulus())
    var = np.abs(truth["gain"]) ** 2 / 10 ** (snr_db / 10)
    return BenchRun(clean + _awgn(rng, clean.shape, var[:, None]), truth, var)


# ---------------------------------------------------------------------------------------------- channels
def draw_channels(rng: np.random.Generator, n_rx: int, n_tx: int, n_elements: int = 0,
                  ris_gain: float = 1.0) -> dict:
    """Rayleigh direct channel ``direct`` (n_rx, n_tx) and cascaded channels ``cascade`` (N, n_rx, n_tx)
    (unit-reflection c_n, E|c|² = ris_gain²/N so that the whole RIS path has power ris_gain²)."""
    out = {"direct": _crandn(rng, (n_rx, n_tx))}
    if n_elements:
        out["cascade"] = _crandn(rng, (n_elements, n_rx, n_tx), ris_gain / np.sqrt(n_elements))
    return out


def measure_direct(cal: DirectChannelCal, H: np.ndarray, snr_db: float, rng: np.random.Generator) -> BenchRun:
    """Y = H X + W with the calibration's orthogonal pilots X."""
    X = cal.pilots()
    clean = H @ X
    var = float(np.sum(np.abs(H) ** 2) / H.shape[0] / 10 ** (snr_db / 10))
    return BenchRun(clean + _awgn(rng, clean.shape, var), {"H": H}, var)


# ------------------------------------------------------------------------------------------------- RIS
def draw_ris_table(rng: np.random.Generator, n_elements: int, *, phases_deg=(0.0, 160.0), amps_db=(-1.0, -3.0),
                   phase_sd_deg: float = 5.0, amp_sd_db: float = 0.3) -> np.ndarray:
    """Hidden per-element, per-state reflection table Γ (N, n_states)."""
    ph = np.radians(np.asarray(phases_deg)[None, :] + rng.normal(0, phase_sd_deg, (n_elements, len(phases_deg))))
    amp = 10 ** ((np.asarray(amps_db)[None, :] + rng.normal(0, amp_sd_db, (n_elements, len(amps_db)))) / 20)
    return amp * np.exp(1j * ph)


def measure_ris_cascade(cal: RisCascadeCal, chans: dict, table: np.ndarray | None, snr_db: float,
                        rng: np.random.Generator, n_pilots: int | None = None) -> BenchRun:
    """Sweep the codebook: in slot t the RIS gives Γ[n, s_tn] (1-bit) or φ_tn (dft, ideal phases); the
    channel H_t = h_d + Σ c_n Γ_n(s_t) is sounded with orthogonal pilots (entries (M_rx, M_tx)) and
    estimated per slot by LS; returns Y (T, *entry_shape) and the truth in the estimator's coefficients."""
    e = cal.entry_shape
    direct, cascade = chans["direct"].reshape(e), chans["cascade"].reshape((-1,) + e)
    P = cal.patterns()
    if cal.affine:
        if table is None:
            raise CalibrationError("table", "the RIS reflection table Γ (N, 2) for 1-bit codebooks", None)
        refl = np.take_along_axis(table, P.T.astype(np.int64), axis=1).T         # (T, N)
        truth = affine_truth(direct, cascade, table)
    else:
        refl = P
        truth = {"direct": direct, "cascade": cascade}
    H = direct[None] + np.tensordot(refl, cascade, axes=(1, 0))                    # (T, *e)
    if len(e) == 2:
        pil = DirectChannelCal(n_rx=e[0], n_tx=e[1], n_slots=n_pilots).pilots()
        var = float(np.mean(np.sum(np.abs(H) ** 2, axis=-1)) / 10 ** (snr_db / 10))
        Yraw = H @ pil
        Yraw = Yraw + _awgn(rng, Yraw.shape, var)
        Y = ls_channel(Yraw, pil)
        entry_var = var / pil.shape[1]
        extra = {"raw": Yraw, "pilots": pil}
    else:
        entry_var = float(np.mean(np.abs(H) ** 2) / 10 ** (snr_db / 10))
        Y = H + _awgn(rng, H.shape, entry_var)
        extra = {}
    return BenchRun(Y, truth, entry_var, extra)


def measure_ris_states(cal: RisStateCal, table: np.ndarray, snr_db: float, rng: np.random.Generator,
                       n_positions: int | None = None, ref_gain: complex = 1.0) -> BenchRun:
    """Background-subtracted angular scan of the patterns; Q known; returns Y (T, K)."""
    N = cal.params["n_elements"]
    Q = scan_response(N, n_positions or N, gain=ref_gain)
    clean = RisStateCal.from_coefs({"table": table}, **cal.params).measure_model(Q)
    var = float(np.mean(np.abs(clean) ** 2) / 10 ** (snr_db / 10))
    return BenchRun(clean + _awgn(rng, clean.shape, var), {"table": table}, var, {"element_response": Q})


# ---------------------------------------------------------------------------------------------- clutter
def ula(dim: int, theta_rad) -> np.ndarray:
    """λ/2 ULA steering vectors, (dim,) or (dim, n_angles)."""
    return np.exp(1j * np.pi * np.outer(np.arange(dim), np.sin(np.atleast_1d(theta_rad)))).squeeze()


def draw_clutter_cov(rng: np.random.Generator, dim: int, *, n_clutter: int = 3, cnr_db=(20.0, 30.0),
                     noise_var: float = 1.0) -> dict:
    """True C = Σ_q ξ_q² a(θ_q) a(θ_q)ᴴ + ξ_z² I, θ_q ~ U(−60°, 60°), and a target steering ``s`` at 0°."""
    th = np.radians(rng.uniform(-60, 60, n_clutter))
    A = ula(dim, th).reshape(dim, n_clutter)
    p = noise_var * 10 ** (rng.uniform(*cnr_db, n_clutter) / 10)
    C = (A * p) @ A.conj().T + noise_var * np.eye(dim)
    return {"C": 0.5 * (C + C.conj().T), "angles_rad": th, "s": ula(dim, 0.0).reshape(dim)}


def measure_clutter(C: np.ndarray, n_frames: int, rng: np.random.Generator) -> BenchRun:
    """Target-free frames r_f = L w_f, C = L Lᴴ, shape (F, dim)."""
    dim = C.shape[0]
    frames = ClutterCovCal.from_coefs({"C": C}, dim=dim).embed(_crandn(rng, (n_frames, dim)))
    return BenchRun(frames, {"C": C}, float(np.linalg.eigvalsh(C)[0]))


# ------------------------------------------------------------------------------------------- one shot
DEFAULTS = {
    "chains": {"n_chains": 4, "preamble_len": 1021, "snr_db": 20.0},
    "channels": {"n_rx": 4, "n_tx": 4, "n_elements": 16, "codebook": "hadamard", "n_slots": 64,
                 "snr_db": 20.0},
    "ris": {"n_elements": 16, "n_slots": 512, "snr_db": 20.0},
    "clutter": {"dim": 16, "n_frames": 256, "snr_db": None},
}


def calibrate_sim(what: str, seed: int = 0, snr_db: float | None = None, progress=None, **kw):
    """Run one simulated calibration end to end.

    Returns ``(cal, report, run)``: the fitted estimator, a JSON-able dict comparing estimate and truth
    (``phase_error_deg_max``, ``gain_error_db_max``, ``delay_error_samples_max`` for chains, ``nmse_db``
    for channels, ``state_phase_error_deg_max`` for the RIS table, ``cov_nmse_db``/``sinr_loss_db`` for
    clutter), and the :class:`BenchRun` (raw data for SigMF).
    """
    if what not in DEFAULTS:
        raise CalibrationError("what", "one of " + ", ".join(DEFAULTS), repr(what))
    opts = dict(DEFAULTS[what])
    kw = {k: v for k, v in kw.items() if v is not None}
    if what == "clutter" and "n_slots" in kw:
        kw["n_frames"] = kw.pop("n_slots")
    opts.update({k: v for k, v in kw.items() if k in opts or k in ("max_cfo", "cfo_max", "method", "loading")})
    if what in ("channels", "ris") and opts.get("codebook", "hadamard") == "hadamard":
        order = 1 << max(0, opts["n_elements"].bit_length())          # Hadamard order >= N+1
        opts["n_slots"] = max(order, -(-int(opts["n_slots"]) // order) * order)   # round up to a multiple
    if what == "channels" and opts["codebook"] == "onoff":
        P = opts["n_elements"] + 1
        opts["n_slots"] = max(P, -(-int(opts["n_slots"]) // P) * P)
    if what == "channels" and opts["codebook"] in ("dft", "random"):
        opts["n_slots"] = max(int(opts["n_slots"]), opts["n_elements"] + 1)
    if snr_db is not None:
        opts["snr_db"] = float(snr_db)
    rng = np.random.default_rng(seed)
    step = progress or (lambda msg: None)
    report = {"what": what, "seed": seed, "snr_db": opts.get("snr_db")}
    if what == "chains":
        n = opts["n_chains"]
        cal = ChainCal(n_chains=n, preamble_len=opts["preamble_len"], max_cfo=opts.get("max_cfo", 0.0))
        truth = draw_chain_truth(rng, n, cfo_max=opts.get("cfo_max", 0.0))
        step("measure")
        run = measure_chains(cal, truth, opts["snr_db"], rng)
        step("estimate")
        cal.run(run.data)
        report.update(compare_chains(cal.coefs, truth), preamble_len=opts["preamble_len"], n_chains=n)
    elif what == "channels":
        e = (opts["n_rx"], opts["n_tx"])
        cal = RisCascadeCal(n_elements=opts["n_elements"], entry_shape=e, codebook=opts["codebook"],
                            n_slots=opts["n_slots"], seed=seed)
        chans = draw_channels(rng, *e, opts["n_elements"])
        table = draw_ris_table(rng, opts["n_elements"])
        step("measure")
        run = measure_ris_cascade(cal, chans, table, opts["snr_db"], rng)
        step("estimate")
        cal.run(run.data)
        est = np.concatenate([cal.coefs["direct"][None], cal.coefs["cascade"]])
        tru = np.concatenate([run.truth["direct"][None], run.truth["cascade"]])
        report.update(nmse_db=nmse_db(est, tru),
                      nmse_theory_db=float(10 * np.log10(cal.theory_mse(run.noise_var) / np.sum(np.abs(tru) ** 2))),
                      n_slots=cal.params["n_slots"], codebook=opts["codebook"])
    elif what == "ris":
        cal = RisStateCal(n_elements=opts["n_elements"], n_slots=opts["n_slots"])
        table = draw_ris_table(rng, opts["n_elements"])
        step("measure")
        run = measure_ris_states(cal, table, opts["snr_db"], rng)
        step("estimate")
        cal.run(run.data, element_response=run.extra["element_response"])
        report.update(compare_tables(cal.coefs["table"], table), n_slots=cal.params["n_slots"])
    else:
        dim = opts["dim"]
        cal = ClutterCovCal(dim=dim, method=opts.get("method", "sample"), loading=opts.get("loading", 1e-3))
        tc = draw_clutter_cov(rng, dim)
        step("measure")
        run = measure_clutter(tc["C"], opts["n_frames"], rng)
        step("estimate")
        cal.run(run.data)
        report.update(compare_cov(cal.coefs["C"], tc["C"], tc["s"]), n_frames=opts["n_frames"],
                      rmb_expected_loss_db=float(-10 * np.log10((opts["n_frames"] + 2 - dim) / (opts["n_frames"] + 1))))
    return cal, report, run


def emulator_impairments(tx: dict | None = None, rx: dict | None = None, ris_phase_bits: int = 0):
    """The same hidden chain truth as an ``isac_opt.bench.channel.Impairments`` for the lead's streaming
    channel emulator (issue 6): TX/RX complex gains, RX integer delays (rounded, shifted to be >= 0).

    The emulator applies gain, then CFO, then delay, so with a CFO its phase reference differs from
    :class:`ChainCal`'s by e^{−j2π ε d}; fractional delays are not modelled there (rounded here).
    """
    from isac_opt.bench.channel import Impairments
    rx_delay = None
    if rx is not None:
        d = np.round(np.asarray(rx["delay"], dtype=np.float64)).astype(np.int64)
        rx_delay = d - min(0, int(d.min()))
    return Impairments(tx_gain=None if tx is None else np.asarray(tx["gain"]),
                       rx_gain=None if rx is None else np.asarray(rx["gain"]), rx_delay=rx_delay,
                       cfo=0.0 if rx is None else float(np.asarray(rx.get("cfo", [0.0]))[0]),
                       ris_phase_bits=int(ris_phase_bits))
