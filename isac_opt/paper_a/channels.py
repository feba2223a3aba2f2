"""Paper A channels and RIS-cascaded legs [spec A.2, A.4].

One realisation (A's "CSI set", [RECON] incl. symbols) is a :class:`ChannelsA`. Target and clutter links
are deterministic LoS; G (LoS, random angles) and the user links (Rayleigh) are drawn from an explicit
``np.random.Generator``.

Leg convention (``ris_leg_model``):
* ``"literal"`` (paper A, [R25]): receive leg a = h_b + Gᴴ(h_r ⊙ φ), transmit leg b = h_b* + Gᵀ(h_r* ⊙ φ),
  H = a bᵀ (so bᵀ = h_bᴴ + h_rᴴ Φ G).
* ``"reciprocal"``: a = b = h_b* + Gᵀ(h_r* ⊙ φ), H = b bᵀ.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import numpy as np

from .scenario import ScenarioA
from ..errors import DesignFileError
from ..geometry import path_loss, ula_steering, ula_steering_deriv

CHANNEL_FIELDS = {  # name -> (shape as a function of the scenario)
    "G": lambda s: (s.N, s.M),
    "h_bt": lambda s: (s.M,),
    "h_rt": lambda s: (s.N,),
    "h_bq": lambda s: (s.Q, s.M),
    "h_rq": lambda s: (s.Q, s.N),
    "h_k": lambda s: (s.K, s.M),
    "h_rk": lambda s: (s.K, s.N),
    "S": lambda s: (s.K, s.L),
}


@dataclass(frozen=True)
class ChannelsA:
    """One paper-A realisation; all complex128.

    G (N, M) BS→RIS; h_bt (M,), h_rt (N,) target LoS; h_bq (Q, M), h_rq (Q, N) clutter LoS;
    h_k (K, M) BS→user (used as h_kᴴ); h_rk (K, N) RIS→user (used as h_{r,k}ᴴ); S (K, L) PSK symbols.
    """

    G: np.ndarray
    h_bt: np.ndarray
    h_rt: np.ndarray
    h_bq: np.ndarray
    h_rq: np.ndarray
    h_k: np.ndarray
    h_rk: np.ndarray
    S: np.ndarray

    def without_ris(self) -> "ChannelsA":
        """The "w/o RIS" variant: G = 0, so every RIS term vanishes [spec A.11.4]."""
        return dataclasses.replace(self, G=np.zeros_like(self.G))

    def arrays(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def check(self, scn: ScenarioA, where: str = "channels") -> "ChannelsA":
        for name, shape in CHANNEL_FIELDS.items():
            a = getattr(self, name)
            if not isinstance(a, np.ndarray) or a.shape != shape(scn):
                raise DesignFileError(f"{where}: '{name}' must have shape {shape(scn)}, "
                                      f"got {getattr(a, 'shape', type(a).__name__)}")
            if not np.iscomplexobj(a):
                raise DesignFileError(f"{where}: '{name}' must be complex, got dtype {a.dtype}")
            if not np.all(np.isfinite(a)):
                raise DesignFileError(f"{where}: '{name}' contains NaN or Inf")
        return self

    def save(self, path, scn: ScenarioA, meta: dict | None = None) -> None:
        """Write a channels file (.npz with the arrays and a ``meta`` JSON with the scenario)."""
        m = {"format": "ris-isac-testbed/paper-a-channels", "version": 1, "scenario": scn.to_dict()}
        m.update(meta or {})
        with open(path, "wb") as f:
            np.savez(f, meta=np.array(json.dumps(m)), **self.arrays())

    @staticmethod
    def load(path, scn: ScenarioA) -> "ChannelsA":
        """Read a channels file written by :meth:`save` (or a design file) and check it against ``scn``."""
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: np.asarray(z[k]) for k in CHANNEL_FIELDS if k in z.files}
        except Exception as e:  # zip/format errors of a damaged file
            raise DesignFileError(f"{path}: not a readable channels file ({type(e).__name__}: {e})") from None
        missing = [k for k in CHANNEL_FIELDS if k not in arrays]
        if missing:
            raise DesignFileError(f"{path}: missing arrays {missing}")
        return ChannelsA(**{k: arrays[k].astype(np.complex128) if np.iscomplexobj(arrays[k]) else arrays[k]
                            for k in CHANNEL_FIELDS}).check(scn, str(path))


def target_clutter_los(scn: ScenarioA) -> dict:
    """Deterministic LoS target/clutter vectors and their θ-derivatives [spec A.2, A.8]."""
    b_bt = path_loss(scn.d_bt, scn.ple_bt, scn.c0_db)
    b_rt = path_loss(scn.d_rt, scn.ple_rt, scn.c0_db)
    bins = np.asarray(scn.clutter_bins, dtype=np.float64)
    b_bq = path_loss(scn.d_bt + scn.d_cell * bins, scn.ple_bt, scn.c0_db)
    b_rq = path_loss(scn.d_rt + scn.d_cell * bins, scn.ple_rt, scn.c0_db)
    return {
        "h_bt": b_bt * ula_steering(scn.M, scn.theta0_rad),
        "h_rt": b_rt * ula_steering(scn.N, scn.theta_ris_rad),
        "dh_bt": b_bt * ula_steering_deriv(scn.M, scn.theta0_rad),
        "dh_rt": b_rt * ula_steering_deriv(scn.N, scn.theta_ris_rad),
        "h_bq": b_bq[:, None] * ula_steering(scn.M, np.asarray(scn.clutter_angles_rad)).reshape(scn.Q, scn.M),
        "h_rq": b_rq[:, None] * ula_steering(scn.N, np.asarray(scn.clutter_ris_angles)).reshape(scn.Q, scn.N),
    }


def _cn(rng, shape):
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2.0)


def draw_channels(scn: ScenarioA, rng: np.random.Generator) -> ChannelsA:
    """Draw one realisation [spec A.2]: G LoS with ϑ_a, ϑ_d ~ U(−π/2, π/2); users Rayleigh; QPSK symbols."""
    from ..ci import draw_symbols
    los = target_clutter_los(scn)
    va, vd = rng.uniform(-np.pi / 2, np.pi / 2, size=2)
    G = path_loss(scn.d_br, scn.ple_br, scn.c0_db) * np.outer(ula_steering(scn.N, va),
                                                             np.conj(ula_steering(scn.M, vd)))
    if scn.user_fading == "rayleigh":
        g, gr = _cn(rng, (scn.K, scn.M)), _cn(rng, (scn.K, scn.N))
    else:  # [R25]'s (U[0,1) + jU[0,1))/√2 draw, kept for comparison with its code
        g = (rng.uniform(size=(scn.K, scn.M)) + 1j * rng.uniform(size=(scn.K, scn.M))) / np.sqrt(2)
        gr = (rng.uniform(size=(scn.K, scn.N)) + 1j * rng.uniform(size=(scn.K, scn.N))) / np.sqrt(2)
    h_k = path_loss(scn.d_bu, scn.ple_bu, scn.c0_db) * g
    h_rk = path_loss(scn.d_ru, scn.ple_ru, scn.c0_db) * gr
    S = draw_symbols(scn.K, scn.L, scn.psk_order, rng)
    return ChannelsA(G=G.astype(np.complex128), h_bt=los["h_bt"], h_rt=los["h_rt"], h_bq=los["h_bq"],
                     h_rq=los["h_rq"], h_k=h_k, h_rk=h_rk, S=S)


def realisation_rng(seed: int, index: int = 0) -> np.random.Generator:
    """Generator for realisation ``index`` of a seeded run (SeedSequence spawn keyed by the index)."""
    return np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(index,)))


def effective_user_channels(ch: ChannelsA, phi) -> np.ndarray:
    """H̃ with rows h̃_kᴴ = h_kᴴ + h_{r,k}ᴴ Φ G [spec A.3 (1)]; complex128 (K, M)."""
    return np.conj(ch.h_k) + (np.conj(ch.h_rk) * phi) @ ch.G


def legs(ch: ChannelsA, phi, model: str = "literal") -> tuple[np.ndarray, np.ndarray]:
    """Receive and transmit legs of target (row 0) and clutters (rows 1..Q) [spec A.4 (6)].

    Returns (a, b), each complex128 (Q+1, M), with H_i = a_i b_iᵀ.
    """
    hb = np.concatenate([ch.h_bt[None], ch.h_bq], axis=0)      # (Q+1, M)
    hr = np.concatenate([ch.h_rt[None], ch.h_rq], axis=0)      # (Q+1, N)
    b = np.conj(hb) + (np.conj(hr) * phi) @ ch.G               # h_bᴴ + h_rᴴ Φ G as rows
    if model == "literal":
        a = hb + (hr * phi) @ np.conj(ch.G)                    # (Gᴴ(h_r ⊙ φ))ᵀ as rows
    elif model == "reciprocal":
        a = b
    else:
        raise ValueError(f"ris_leg_model: expected 'literal' or 'reciprocal', got {model!r}")
    return a, b


def cascaded_matrix(a_i, b_i) -> np.ndarray:
    """H_i = a_i b_iᵀ (M×M, rank one) — formed only for tests and small checks."""
    return np.outer(a_i, b_i)
