"""Direct and RIS-cascaded channel estimation from pilots and toggled RIS configurations.

* :class:`DirectChannelCal` — LS with orthogonal pilots across the M_tx TX antennas:
  Y = H X + W, Ĥ = Y Xᴴ (X Xᴴ)⁻¹, E‖Ĥ − H‖²_F = σ² M_rx tr((XXᴴ)⁻¹) = σ² M_rx M_tx / T for DFT pilots.
  These are the user channels h̃_k and the round-trip matrices of spec A.3–A.4 seen at one RIS setting.
* :class:`RisCascadeCal` — y_t = h_d + Σ_n c_n φ_n(s_t) + w_t per receive entry (bench notes §5.2).
  Stack T configurations: y = A θ + w, A's rows [1, φ(s_t)ᵀ], θ = [h_d; c], θ̂ = A⁺ y.
  For 1-bit boards (``codebook="hadamard" | "onoff" | "random"``) the model is AFFINE in the states
  s ∈ {0, 1}: y = h_d′ + Σ_n b_n s_n with h_d′ = h_d + Σ_n c_n Γ_{n,0} and b_n = c_n (Γ_{n,1} − Γ_{n,0}),
  so the OFF-state reflection is absorbed and no ±1 assumption is needed. ``codebook="dft"`` needs a
  continuous-phase RIS and estimates θ = [h_d; c] directly (AᴴA = T I).
  The estimate's MSE is σ² tr((AᴴA)⁻¹) per entry (``theory_mse``), which the benchmark checks.
  With M_tx TX antennas each slot's entry is a full M_rx×M_tx matrix estimated by DirectChannelCal's LS.
"""
from __future__ import annotations

import numpy as np

from .base import Calibration, as_array, register
from .errors import CalibrationError
from .signals import dft_phases, hadamard_states, onoff_states, orthogonal_pilots, random_states


def ls_channel(Y: np.ndarray, X: np.ndarray) -> np.ndarray:
    """LS channel Ĥ = Y Xᴴ (X Xᴴ)⁻¹ for Y (..., M_rx, T) and pilots X (M_tx, T)."""
    G = X @ X.conj().T
    return np.linalg.solve(G.T, (Y @ X.conj().T).swapaxes(-1, -2)).swapaxes(-1, -2)


def nmse_db(est, truth) -> float:
    """10 log10(‖est − truth‖² / ‖truth‖²) [dB]."""
    est, truth = np.asarray(est), np.asarray(truth)
    return float(10 * np.log10(np.sum(np.abs(est - truth) ** 2) / np.sum(np.abs(truth) ** 2)))


def _apply_matrix(H, x, name="x"):
    """H @ x for a matrix H (M_rx, M_tx) or a scalar channel."""
    if H.ndim == 0:
        return H * x
    x = as_array(name, x)
    if x.shape[0] != H.shape[1]:
        raise CalibrationError(name, f"leading dimension {H.shape[1]} (TX antennas)", f"shape {x.shape}")
    return H @ x if x.ndim > 1 else H @ x


def _solve_matrix(H, y, name="y"):
    """Least-squares inverse of the channel: pinv(H) @ y (exact when H has full column rank)."""
    if H.ndim == 0:
        return y / H
    y = as_array(name, y)
    if y.shape[0] != H.shape[0]:
        raise CalibrationError(name, f"leading dimension {H.shape[0]} (RX antennas)", f"shape {y.shape}")
    return np.linalg.pinv(H) @ y


@register
class DirectChannelCal(Calibration):
    """Direct channel H (M_rx, M_tx) from orthogonal pilots X (M_tx, T).

    Parameters
    ----------
    n_rx, n_tx : int
        Receive antennas (or single-antenna users K) and TX antennas M.
    n_slots : int
        Pilot length T >= n_tx (DFT pilots, X Xᴴ = T I).

    ``run(Y)`` with Y (n_rx, T); coefficient ``H`` complex (n_rx, n_tx). ``embed(x) = H x``;
    ``apply(y) = H⁺ y`` (zero-forcing; exact inverse when n_rx >= n_tx).
    """

    kind = "DirectChannelCal"

    def __init__(self, n_rx: int = 4, n_tx: int = 4, n_slots: int | None = None):
        for name, v in (("n_rx", n_rx), ("n_tx", n_tx)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise CalibrationError(name, "an integer >= 1", v)
        n_slots = int(n_tx) if n_slots is None else int(n_slots)
        if n_slots < n_tx:
            raise CalibrationError("n_slots", f"an integer >= n_tx = {n_tx}", n_slots)
        super().__init__(n_rx=int(n_rx), n_tx=int(n_tx), n_slots=n_slots)

    def pilots(self) -> np.ndarray:
        """Orthogonal pilots X, complex128 (n_tx, n_slots)."""
        return orthogonal_pilots(self.params["n_tx"], self.params["n_slots"])

    def theory_mse(self, noise_var: float) -> float:
        """E‖Ĥ − H‖²_F = σ² n_rx tr((XXᴴ)⁻¹)."""
        X = self.pilots()
        return float(noise_var * self.params["n_rx"] * np.trace(np.linalg.inv(X @ X.conj().T)).real)

    def _check_coefs(self, coefs):
        p = self.params
        return {"H": as_array("H", coefs["H"], shape=(p["n_rx"], p["n_tx"]))}

    def _run(self, measurements):
        p = self.params
        Y = as_array("measurements", measurements, shape=(p["n_rx"], p["n_slots"]))
        X = self.pilots()
        H = ls_channel(Y, X)
        r = Y - H @ X
        dof = max(p["n_slots"] - p["n_tx"], 1)
        noise = float(np.sum(np.abs(r) ** 2) / (p["n_rx"] * dof))
        return {"H": H}, {"noise_var_est": noise, "rms": float(np.sqrt(np.mean(np.abs(r) ** 2)))}

    def embed(self, x):
        """Impose the channel: H x, x (n_tx, ...)."""
        return _apply_matrix(self._need()["H"], x)

    def apply(self, y):
        """Remove the channel: H⁺ y, y (n_rx, ...)."""
        return _solve_matrix(self._need()["H"], y)


CODEBOOKS = ("hadamard", "onoff", "dft", "random")


@register
class RisCascadeCal(Calibration):
    """RIS-cascaded channel by toggling configurations; affine LS for 1-bit boards.

    Parameters
    ----------
    n_elements : int
        RIS elements N.
    entry_shape : tuple of int
        Shape of one slot's measurement, e.g. ``(M_rx, M_tx)`` after per-slot pilot LS, or ``()``.
    codebook : {"hadamard", "onoff", "dft", "random"}
        Configuration design; ``dft`` needs continuous phases, the others are 1-bit (affine model).
    n_slots : int or None
        Number of configurations T (default: the smallest valid one).
    seed : int
        Seed of the ``random`` codebook.

    ``run(Y)`` with Y (T, *entry_shape) (optionally ``patterns=`` to override the codebook).
    Coefficients: ``direct`` (*entry_shape) = h_d′ (h_d for dft), ``cascade`` (N, *entry_shape) = b_n (c_n).
    ``effective_channel(state)`` = h_d′ + Σ s_n b_n (1-bit) or h_d + Σ φ_n c_n (dft);
    ``embed(x, state)`` = H(s) x, ``apply(y, state)`` = H(s)⁺ y.
    """

    kind = "RisCascadeCal"

    def __init__(self, n_elements: int = 16, entry_shape=(), codebook: str = "hadamard",
                 n_slots: int | None = None, seed: int = 0):
        if not isinstance(n_elements, (int, np.integer)) or n_elements < 1:
            raise CalibrationError("n_elements", "an integer >= 1", n_elements)
        if codebook not in CODEBOOKS:
            raise CalibrationError("codebook", "one of " + ", ".join(CODEBOOKS), repr(codebook))
        entry_shape = tuple(int(e) for e in entry_shape)
        super().__init__(n_elements=int(n_elements), entry_shape=list(entry_shape), codebook=codebook,
                         n_slots=None if n_slots is None else int(n_slots), seed=int(seed))
        self._patterns = self._make_patterns()
        self.params["n_slots"] = int(self._patterns.shape[0])

    @property
    def entry_shape(self) -> tuple:
        return tuple(self.params["entry_shape"])

    @property
    def affine(self) -> bool:
        return self.params["codebook"] != "dft"

    def _make_patterns(self):
        N, T, cb = self.params["n_elements"], self.params["n_slots"], self.params["codebook"]
        if cb == "hadamard":
            return hadamard_states(N, T)
        if cb == "onoff":
            return onoff_states(N, T)
        if cb == "dft":
            return dft_phases(N, T)
        if T is None:
            T = 2 * (N + 1)
        if T < N + 1:
            raise CalibrationError("n_slots", f"an integer >= N+1 = {N + 1}", T)
        return random_states(N, T, np.random.default_rng(self.params["seed"]))

    def patterns(self) -> np.ndarray:
        """Configurations: int states (T, N) in {0,1}, or complex phases (T, N) for ``dft``."""
        return self._patterns.copy()

    def design_matrix(self, patterns=None) -> np.ndarray:
        """A = [1, φ(s_t)ᵀ] (T, N+1), complex128."""
        P = self._patterns if patterns is None else patterns
        return np.hstack([np.ones((P.shape[0], 1)), P]).astype(np.complex128)

    def theory_mse(self, noise_var: float, patterns=None) -> float:
        """E‖θ̂ − θ‖² = σ² tr((AᴴA)⁻¹) · n_entries (σ² = noise variance of one slot's entry)."""
        A = self.design_matrix(patterns)
        n_ent = int(np.prod(self.entry_shape)) if self.entry_shape else 1
        return float(noise_var * n_ent * np.trace(np.linalg.inv(A.conj().T @ A)).real)

    def _check_coefs(self, coefs):
        N, e = self.params["n_elements"], self.entry_shape
        return {"direct": as_array("direct", coefs["direct"], shape=e),
                "cascade": as_array("cascade", coefs["cascade"], shape=(N,) + e)}

    def _run(self, measurements, patterns=None):
        N, e = self.params["n_elements"], self.entry_shape
        if patterns is not None:
            dtype = np.float64 if self.affine else np.complex128
            patterns = as_array("patterns", patterns, ndim=2, dtype=dtype)
            if patterns.shape[1] != N:
                raise CalibrationError("patterns", f"shape (T, {N})", f"shape {patterns.shape}")
            if self.affine and not np.all((patterns == 0) | (patterns == 1)):
                raise CalibrationError("patterns", "1-bit states in {0, 1}", "other values")
        P = self._patterns if patterns is None else patterns
        T = P.shape[0]
        Y = as_array("measurements", measurements, shape=(T,) + e)
        A = self.design_matrix(P)
        if np.linalg.matrix_rank(A) < N + 1:
            raise CalibrationError("patterns", f"a design [1, S] of full column rank {N + 1}",
                                   f"rank {np.linalg.matrix_rank(A)}")
        Yf = Y.reshape(T, -1)
        theta, *_ = np.linalg.lstsq(A, Yf, rcond=None)
        r = Yf - A @ theta
        dof = max(T - N - 1, 1)
        residual = {"noise_var_est": float(np.sum(np.abs(r) ** 2) / (dof * Yf.shape[1])),
                    "cond_A": float(np.linalg.cond(A))}
        return {"direct": theta[0].reshape(e), "cascade": theta[1:].reshape((N,) + e)}, residual

    def effective_channel(self, state) -> np.ndarray:
        """Channel for one configuration: h_d′ + Σ_n s_n b_n (1-bit) or h_d + Σ_n φ_n c_n; shape entry_shape."""
        c = self._need()
        N = self.params["n_elements"]
        s = as_array("state", state, shape=(N,))
        if self.affine and not np.all((s == 0) | (s == 1)):
            raise CalibrationError("state", "1-bit states in {0, 1}", "other values")
        return c["direct"] + np.tensordot(s, c["cascade"], axes=(0, 0))

    def embed(self, x, state):
        """Impose the channel of configuration ``state``: H(s) x."""
        return _apply_matrix(self.effective_channel(state), x)

    def apply(self, y, state):
        """Remove the channel of configuration ``state``: H(s)⁺ y."""
        return _solve_matrix(self.effective_channel(state), y)


def affine_truth(direct, cascade, table) -> dict:
    """True affine coefficients of a 1-bit RIS: h_d′ = h_d + Σ c_n Γ_{n,0}, b_n = c_n (Γ_{n,1} − Γ_{n,0}).

    ``direct`` (*e), ``cascade`` c (N, *e) with unit reflection, ``table`` Γ (N, 2).
    """
    cascade = np.asarray(cascade)
    g0 = table[:, 0].reshape((-1,) + (1,) * (cascade.ndim - 1))
    g1 = table[:, 1].reshape((-1,) + (1,) * (cascade.ndim - 1))
    return {"direct": np.asarray(direct) + np.sum(cascade * g0, axis=0), "cascade": cascade * (g1 - g0)}
