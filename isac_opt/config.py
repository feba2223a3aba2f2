"""Scenario configuration: frozen, validated dataclasses with TOML I/O.

``ScenarioA`` holds paper A's default scenario [spec A.12]; ``ScenarioB`` (paper B, [spec B.9]) lives in
:mod:`isac_opt.paper_b.scenario` and shares the machinery here. Every [RECON] choice of the spec is a
named field. Invalid values raise :class:`~isac_opt.errors.ScenarioError` naming the field.

Units: powers in W, angles in rad, distances in m. ``*_db`` fields are in dB.
"""
from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ScenarioError
from .validate import (check_choice, check_int, check_int_list, check_real, check_real_list)

LEG_MODELS = ("literal", "reciprocal")
USER_FADING = ("rayleigh", "r25_uniform")
PSK_ORDERS = (2, 4, 8, 16)
DFP_VARIANTS = ("paper", "standard")

# Upper size limits, checked before anything is allocated (a TOML with N = 1e7 must fail in one line, not
# after GBs of allocation). [RECON: generous margins over the papers' sweeps (A: N <= 128, M = 6, L = 20;
# B: N = 32, Pc = 8, L = 16); the products bound the largest dense matrices: paper A's (ML)x(ML) echo
# covariance and paper B's space-time blocks of Pc*L*Nt / Pc*L*Nr entries, to <= 64 MB each.]
SIZE_LIMITS = {
    "paper-a": {"M": 256, "N": 4096, "K": 64, "L": 1024, "Q": 64},
    "paper-b": {"Nt": 256, "Nr": 256, "K": 64, "R": 16, "N": 4096, "Q": 64, "Pc": 1024, "L": 1024,
                "n_realisations": 1_000_000, "max_outer": 100_000, "phi_inner": 1000, "x_passes": 1000},
}
PRODUCT_LIMITS = {
    "paper-a": ((("M", "L"), 2048),),
    "paper-b": ((("Pc", "L", "Nt"), 2048), (("Pc", "L", "Nr"), 2048)),
}


def check_sizes(kind: str, d: dict) -> None:
    """Check the size fields of a scenario dict of ``kind`` against SIZE_LIMITS / PRODUCT_LIMITS.

    Raises :class:`ScenarioError` naming the field; fields absent from ``d`` take their (small) defaults.
    """
    for name, hi in SIZE_LIMITS.get(kind, {}).items():
        if name in d:
            check_int(name, d[name], hi=hi)
    for names, hi in PRODUCT_LIMITS.get(kind, ()):
        if all(n in d for n in names):
            prod = math.prod(int(d[n]) for n in names)
            if prod > hi:
                raise ScenarioError("*".join(names), f"a product <= {hi} (dense matrices of that size are "
                                    f"allocated)", prod)


class ScenarioBase:
    """Shared behaviour: dict/TOML round trip, ``replace`` with re-validation."""

    kind: str = ""

    def to_dict(self) -> dict:
        d = {"kind": self.kind}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = list(v) if isinstance(v, tuple) else v
        return d

    @classmethod
    def from_dict(cls, d: dict):
        d = dict(d)
        kind = d.pop("kind", cls.kind)
        if kind != cls.kind:
            raise ScenarioError("kind", repr(cls.kind), kind)
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ScenarioError(unknown[0], "a known field of " + cls.kind + " (unknown field)", d[unknown[0]])
        for k, v in list(d.items()):
            if isinstance(v, list):
                d[k] = tuple(v)
        defaults = {f.name: f.default for f in dataclasses.fields(cls) if f.name in SIZE_LIMITS.get(cls.kind, {})}
        check_sizes(cls.kind, {**defaults, **d})
        return cls(**d)

    def replace(self, **kw):
        return dataclasses.replace(self, **kw)

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    def save_toml(self, path) -> None:
        Path(path).write_text(self.to_toml())


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            raise ScenarioError("<toml>", "finite numbers only", v)
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if v is None:
        raise ScenarioError("<toml>", "no None values (omit the field instead)", v)
    raise ScenarioError("<toml>", "bool, int, float, str or list", type(v).__name__)


def dumps_toml(d: dict) -> str:
    """Write a flat dict (scalars and lists) as TOML; ``None`` values are omitted."""
    return "".join(f"{k} = {_toml_value(v)}\n" for k, v in d.items() if v is not None)


@dataclass(frozen=True)
class ScenarioA(ScenarioBase):
    """Paper A's RIS-ISAC scenario [spec A.1, A.2, A.12]. Defaults are the paper's default point.

    Shapes implied: X (M, L), phi (N,), S (K, L), K users, Q point clutters.
    """

    kind = "paper-a"
    M: int = 6                     # BS antennas [A]
    N: int = 64                    # RIS elements [A]
    K: int = 3                     # users [A]
    L: int = 20                    # slots per pulse = range bins [A]
    Q: int = 3                     # clutter sources [A]
    psk_order: int = 4             # QPSK [A]
    power_w: float = 100.0         # per-slot transmit power P = 20 dBW [A]
    noise_radar_w: float = 1e-11   # xi_z^2 = -80 dBm [A]
    noise_comm_w: tuple = (1e-11, 1e-11, 1e-11)  # sigma_k^2 = -80 dBm [A]
    gamma_db: tuple = (10.0, 10.0, 10.0)         # Gamma_k [A]
    xi0_sq: float = 1.0            # E|alpha_0|^2 [A]
    xi_q_sq: tuple = (1.0, 1.0, 1.0)              # E|alpha_q|^2 [A]
    target_bin: int = 0            # target range bin [A]
    theta0_rad: float = 0.0        # target DoA at the BS [A]
    theta_ris_rad: float = 0.0     # target DoA at the RIS [RECON: = theta0, R25 convention]
    clutter_bins: tuple = (0, 1, 2)                                    # d_q [A]
    clutter_angles_rad: tuple = (-math.pi / 3, -math.pi / 9, math.pi / 4)  # -60, -20, 45 deg [A]
    clutter_angles_ris_rad: tuple = ()   # clutter angles at the RIS; () = same as at the BS [RECON]
    c0_db: float = -30.0           # path loss at d0 = 1 m [A]
    d_bt: float = 30.0             # BS-target [m] [R25]
    d_rt: float = 3.0              # RIS-target [m] [R25]
    d_br: float = 30.0             # BS-RIS [m] [R25]
    d_ru: float = 3.0              # RIS-user [m] [R25]
    d_bu: float = 30.0             # BS-user [m] [R25]
    d_cell: float = 3.0            # extra distance per range bin [m] [R25/RECON]
    ple_br: float = 2.3            # path-loss exponents [A]
    ple_rt: float = 2.3
    ple_ru: float = 2.5
    ple_bt: float = 2.8
    ple_bu: float = 3.0
    ris_leg_model: str = "literal"     # "literal" (A, R25) | "reciprocal" [RECON, spec A.4]
    user_fading: str = "rayleigh"      # "rayleigh" | "r25_uniform" [RECON, spec A.2]

    def __post_init__(self):
        check_sizes(self.kind, {f: getattr(self, f) for f in SIZE_LIMITS[self.kind]})
        M = check_int("M", self.M, lo=1)
        check_int("N", self.N, lo=0)
        K = check_int("K", self.K, lo=1)
        L = check_int("L", self.L, lo=1)
        Q = check_int("Q", self.Q, lo=0)
        check_choice("psk_order", self.psk_order, PSK_ORDERS)
        check_real("power_w", self.power_w, lo=0.0, lo_open=True)
        check_real("noise_radar_w", self.noise_radar_w, lo=0.0, lo_open=True)
        check_real_list("noise_comm_w", self.noise_comm_w, length=K, lo=0.0, lo_open=True)
        check_real_list("gamma_db", self.gamma_db, length=K)
        check_real("xi0_sq", self.xi0_sq, lo=0.0, lo_open=True)
        check_real_list("xi_q_sq", self.xi_q_sq, length=Q, lo=0.0)
        check_int("target_bin", self.target_bin, lo=0, hi=L - 1)
        check_real("theta0_rad", self.theta0_rad, lo=-math.pi / 2, hi=math.pi / 2)
        check_real("theta_ris_rad", self.theta_ris_rad, lo=-math.pi / 2, hi=math.pi / 2)
        check_int_list("clutter_bins", self.clutter_bins, length=Q, lo=0, hi=L - 1)
        check_real_list("clutter_angles_rad", self.clutter_angles_rad, length=Q)
        if len(tuple(self.clutter_angles_ris_rad)):
            check_real_list("clutter_angles_ris_rad", self.clutter_angles_ris_rad, length=Q)
        check_real("c0_db", self.c0_db)
        for f in ("d_bt", "d_rt", "d_br", "d_ru", "d_bu"):
            check_real(f, getattr(self, f), lo=0.0, lo_open=True)
        check_real("d_cell", self.d_cell, lo=0.0)
        for f in ("ple_br", "ple_rt", "ple_ru", "ple_bt", "ple_bu"):
            check_real(f, getattr(self, f), lo=0.0)
        check_choice("ris_leg_model", self.ris_leg_model, LEG_MODELS)
        check_choice("user_fading", self.user_fading, USER_FADING)
        # normalise list-likes to tuples so the frozen dataclass stays hashable
        for f in ("noise_comm_w", "gamma_db", "xi_q_sq", "clutter_bins", "clutter_angles_rad",
                  "clutter_angles_ris_rad"):
            object.__setattr__(self, f, tuple(getattr(self, f)))
        _ = M

    # derived quantities -------------------------------------------------------------------------
    @property
    def theta_psk(self) -> float:
        """Theta = pi / Omega [spec A.1]."""
        return math.pi / self.psk_order

    @property
    def amp(self) -> float:
        """Per-antenna amplitude sqrt(P/M) [spec A.5]."""
        return math.sqrt(self.power_w / self.M)

    @property
    def clutter_ris_angles(self) -> tuple:
        return self.clutter_angles_ris_rad or self.clutter_angles_rad


def builtin_scenarios() -> dict:
    """Name -> scenario factory of the built-in defaults."""
    def paper_b():
        from .paper_b.scenario import ScenarioB
        return ScenarioB()
    return {"paper-a": ScenarioA, "paper-b": paper_b}


def scenario_classes() -> dict:
    classes = {"paper-a": ScenarioA}
    try:
        from .paper_b.scenario import ScenarioB
        classes["paper-b"] = ScenarioB
    except ModuleNotFoundError as e:   # paper B not installed in this checkout
        if "paper_b" not in str(e):
            raise
    return classes


MAX_TOML_BYTES = 1 << 20    # a scenario is a few hundred bytes; bound what we parse


def load_scenario(spec) -> ScenarioBase:
    """Load a scenario from a built-in name (``paper-a``, ``paper-b``), a TOML path, or pass one through."""
    if isinstance(spec, ScenarioBase):
        return spec
    spec = str(spec)
    b = builtin_scenarios()
    if spec in b:
        return b[spec]()
    p = Path(spec)
    if not p.exists():
        raise ScenarioError("scenario", "a built-in name (" + ", ".join(b) + ") or an existing .toml file", spec)
    if not p.is_file():
        raise ScenarioError("scenario", "a .toml file (not a directory)", spec)
    if p.stat().st_size > MAX_TOML_BYTES:
        raise ScenarioError("scenario", f"a TOML file of at most {MAX_TOML_BYTES} bytes", f"{p.stat().st_size} bytes")
    try:
        d = tomllib.loads(p.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ScenarioError("scenario", f"a valid TOML file ({e})", str(p)) from None
    except OSError as e:
        raise ScenarioError("scenario", f"a readable TOML file ({e.strerror})", str(p)) from None
    if not d:
        # an empty file is almost always a mistake (truncated, wrong file): say so instead of silently
        # running the defaults; the defaults have a name
        raise ScenarioError("scenario", "at least one field (the file is empty; for the defaults pass the "
                            "built-in name 'paper-a' or 'paper-b', or write kind = \"paper-a\")", str(p))
    kind = d.get("kind", "paper-a")
    classes = scenario_classes()
    if kind not in classes:
        raise ScenarioError("kind", "one of " + ", ".join(classes), kind)
    return classes[kind].from_dict(d)
