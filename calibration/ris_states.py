"""Per-element, per-state RIS reflection table Γ (N, n_states), the file the RIS driver loads.

Measurement set-up (far-field characterisation, bench notes §5.2): the direct/background path is removed
(background subtraction or time gating) and the response of every element at K receiver positions
(angular scan or an RX array) is known from the geometry and a reference measurement:
Q ∈ C^{K×N}, q_{k,n} = g_ref · e^{jπ n (sin θ_inc + sin θ_k)} for a λ/2 element spacing. Slot t with
states s_t gives

    y_t = Q γ(s_t) + w_t,   γ(s_t)[n] = Γ[n, s_{t,n}],   w_t ~ CN(0, σ² I_K).

Stacking the T slots gives a linear model in vec(Γ): y[(t,k)] = Σ_{n,s} Q[k,n] 1[s_{t,n} = s] Γ[n,s];
``run`` solves it by least squares (identifiable when Q has full column rank and every element visits
every state), Cov(vec Γ̂) = σ² (AᴴA)⁻¹ (``theory_cov``).

A single receiver position cannot separate the per-element OFF-state reflection from the cascaded
channel (only the affine coefficients of :class:`calibration.channels.RisCascadeCal` are identifiable);
that is why this estimator needs K >= N known responses.

``embed(states)`` = Γ[n, s_n] (the non-ideal reflection actually produced by a configuration);
``apply(gamma)`` = per element the state whose Γ is nearest to the wanted coefficient (the driver's
quantiser), so ``apply(embed(s)) == s``.
"""
from __future__ import annotations

import numpy as np

from .base import Calibration, as_array, register
from .errors import CalibrationError
from .signals import hadamard_states, random_states


def scan_response(n_elements: int, n_positions: int, gain=1.0, incidence_rad: float = 0.0) -> np.ndarray:
    """Known element responses Q (K, N) of a λ/2 ULA RIS seen from K receiver angles.

    Angles with sin θ_k = 2k/K − 1 + 1/K (uniform in sine space) make the columns of Q orthogonal when
    K = N (a DFT-like scan), the best-conditioned set-up.
    """
    n = np.arange(n_elements)
    u = 2 * np.arange(n_positions) / n_positions - 1 + 1 / n_positions
    return gain * np.exp(1j * np.pi * np.outer(u + np.sin(incidence_rad), n))


@register
class RisStateCal(Calibration):
    """Per-element, per-state reflection coefficients Γ (N, n_states) from toggled patterns.

    Parameters
    ----------
    n_elements : int
        RIS elements N.
    n_states : int
        States per element (2 for 1-bit boards).
    n_slots : int or None
        Number of patterns T (Hadamard for 2 states: a multiple of the Hadamard order; else random).
    codebook : {"hadamard", "random"}
    seed : int
        Seed of the ``random`` codebook.

    ``run(Y, element_response=Q)`` with Y (T, K), Q (K, N). Coefficient ``table`` complex (N, n_states).
    """

    kind = "RisStateCal"

    def __init__(self, n_elements: int = 16, n_states: int = 2, n_slots: int | None = None,
                 codebook: str = "hadamard", seed: int = 0):
        if not isinstance(n_elements, (int, np.integer)) or n_elements < 1:
            raise CalibrationError("n_elements", "an integer >= 1", n_elements)
        if not isinstance(n_states, (int, np.integer)) or n_states < 2:
            raise CalibrationError("n_states", "an integer >= 2", n_states)
        if codebook not in ("hadamard", "random"):
            raise CalibrationError("codebook", "'hadamard' or 'random'", repr(codebook))
        if codebook == "hadamard" and n_states != 2:
            raise CalibrationError("codebook", "'random' when n_states > 2 (Hadamard is 1-bit)", repr(codebook))
        super().__init__(n_elements=int(n_elements), n_states=int(n_states),
                         n_slots=None if n_slots is None else int(n_slots), codebook=codebook, seed=int(seed))
        N, T = self.params["n_elements"], self.params["n_slots"]
        if codebook == "hadamard":
            self._patterns = hadamard_states(N, T)
        else:
            T = 4 * n_states * (N + 1) if T is None else T
            self._patterns = random_states(N, T, np.random.default_rng(seed), n_states)
        self.params["n_slots"] = int(self._patterns.shape[0])

    def patterns(self) -> np.ndarray:
        """States per slot, int (T, N)."""
        return self._patterns.copy()

    def design_matrix(self, Q, patterns=None) -> np.ndarray:
        """A ((T·K), (N·S)): A[(t,k), (n,s)] = Q[k,n] 1[s_{t,n} = s] (dense; small set-ups and tests only)."""
        P = self._patterns if patterns is None else patterns
        N, S = self.params["n_elements"], self.params["n_states"]
        onehot = (P[:, :, None] == np.arange(S)).astype(np.float64)           # (T, N, S)
        A = Q[None, :, :, None] * onehot[:, None, :, :]                        # (T, K, N, S)
        return A.reshape(P.shape[0] * Q.shape[0], N * S)

    def gram(self, Q, patterns=None) -> np.ndarray:
        """AᴴA (N·S, N·S) without forming A: (OᵀO)[(n,s),(m,r)] · (QᴴQ)[n,m], O the (T, N·S) one-hot states."""
        P = self._patterns if patterns is None else patterns
        N, S = self.params["n_elements"], self.params["n_states"]
        O = (P[:, :, None] == np.arange(S)).astype(np.float64).reshape(P.shape[0], N * S)
        QQ = np.asarray(Q).conj().T @ np.asarray(Q)                            # (N, N)
        return (O.T @ O) * np.repeat(np.repeat(QQ, S, axis=0), S, axis=1)

    def theory_cov(self, noise_var: float, Q) -> np.ndarray:
        """Cov(vec Γ̂) = σ² (AᴴA)⁻¹, (N·S, N·S); vec order (n, s)."""
        return noise_var * np.linalg.inv(self.gram(np.asarray(Q, np.complex128)))

    def _check_coefs(self, coefs):
        N, S = self.params["n_elements"], self.params["n_states"]
        return {"table": as_array("table", coefs["table"], shape=(N, S))}

    def _run(self, measurements, element_response=None, patterns=None):
        N, S = self.params["n_elements"], self.params["n_states"]
        if element_response is None:
            raise CalibrationError("element_response", "the known responses Q, shape (K, N)", None)
        Q = as_array("element_response", element_response, ndim=2)
        if Q.shape[1] != N:
            raise CalibrationError("element_response", f"shape (K, {N})", f"shape {Q.shape}")
        if patterns is not None:
            patterns = as_array("patterns", patterns, ndim=2, dtype=np.int64)
            if patterns.shape[1] != N or patterns.min() < 0 or patterns.max() >= S:
                raise CalibrationError("patterns", f"int states in [0, {S}) of shape (T, {N})",
                                       f"shape {patterns.shape}")
        P = self._patterns if patterns is None else patterns
        Y = as_array("measurements", measurements, shape=(P.shape[0], Q.shape[0]))
        G = self.gram(Q, P)
        ev = np.linalg.eigvalsh(G)
        rank = int(np.sum(ev > ev.max() * 1e-10))
        if rank < N * S:
            raise CalibrationError("element_response", f"a set-up identifying all N·S = {N * S} coefficients "
                                   "(Q of full column rank, every element in every state)", f"rank {rank}")
        onehot = (P[:, :, None] == np.arange(S)).astype(np.float64)            # (T, N, S)
        rhs = np.einsum("tns,tn->ns", onehot, Y @ Q.conj()).ravel()             # Aᴴy
        table = np.linalg.solve(G, rhs).reshape(N, S)
        r = Y - RisStateCal.from_coefs({"table": table}, **self.params).measure_model(Q, P)
        dof = max(Y.size - N * S, 1)
        return {"table": table}, {"noise_var_est": float(np.sum(np.abs(r) ** 2) / dof)}

    def measure_model(self, Q, patterns=None) -> np.ndarray:
        """Noise-free measurements Y (T, K) = Q γ(s_t) of the patterns through this table."""
        P = self._patterns if patterns is None else patterns
        return self.embed(P) @ np.asarray(Q).T

    def embed(self, states):
        """Reflection coefficients produced by ``states`` (int (..., N)): Γ[n, s_n], complex (..., N)."""
        tab = self._need()["table"]
        N, S = tab.shape
        s = np.asarray(states)
        if s.shape[-1:] != (N,) or not np.issubdtype(s.dtype, np.integer) or s.min() < 0 or s.max() >= S:
            raise CalibrationError("states", f"int states in [0, {S}) with last dimension {N}",
                                   f"shape {s.shape}, dtype {s.dtype}")
        return np.take_along_axis(np.broadcast_to(tab, s.shape[:-1] + (N, S)), s[..., None], -1)[..., 0]

    def apply(self, gamma):
        """Nearest state per element for wanted coefficients ``gamma`` (..., N): argmin_s |Γ[n,s] − γ_n|."""
        tab = self._need()["table"]
        g = as_array("gamma", gamma)
        if g.shape[-1:] != (tab.shape[0],):
            raise CalibrationError("gamma", f"last dimension {tab.shape[0]}", f"shape {g.shape}")
        return np.argmin(np.abs(tab - g[..., None]), axis=-1)

    def _summary_rows(self):
        if self.coefs is None:
            return []
        t = self.coefs["table"]
        rows = []
        for s in range(t.shape[1]):
            ph = np.degrees(np.angle(t[:, s]))
            db = 20 * np.log10(np.abs(t[:, s]))
            rows.append((f"state {s}", f"phase {ph.mean():+.1f}° (±{ph.std():.1f}), "
                                       f"gain {db.mean():+.2f} dB (±{db.std():.2f}) over {t.shape[0]} elements"))
        return rows


def compare_tables(est, truth) -> dict:
    """Max over elements and states of |Δphase| [deg] and |Δgain| [dB]."""
    est, truth = np.asarray(est), np.asarray(truth)
    return {"state_phase_error_deg_max": float(np.max(np.abs(np.degrees(np.angle(est / truth))))),
            "state_gain_error_db_max": float(np.max(np.abs(20 * np.log10(np.abs(est) / np.abs(truth)))))}
