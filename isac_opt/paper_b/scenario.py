"""Paper B's multi-active-RIS STAP-SLP scenario [spec B.1, B.2, B.9].

Every number of paper B was lost in extraction, so almost every default here is [RECON] (the spec's
reconstruction); each field says where its value comes from. Invalid values raise
:class:`~isac_opt.errors.ScenarioError` naming the field.

Units: powers in W, positions in m, frequencies in Hz, velocities in m/s, ``*_db`` in dB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..scenario import LEG_MODELS, PSK_ORDERS, SIZE_LIMITS, USER_FADING, ScenarioBase, check_sizes
from ..errors import ScenarioError
from ..validate import check_choice, check_int, check_real, check_real_list

#: RIS positions used when R grows (spec B.2: for R = 3, 4 add (-15, 65), (15, 65)).
DEFAULT_RIS_X = (-15.0, 15.0, -15.0, 15.0)
DEFAULT_RIS_Y = (50.0, 50.0, 65.0, 65.0)
SPEED_OF_LIGHT = 3e8


def default_ris_positions(R: int) -> tuple[tuple, tuple]:
    """RIS x and y coordinates for R = 0..4 RISs [spec B.2, RECON]."""
    if not 0 <= R <= len(DEFAULT_RIS_X):
        raise ScenarioError("R", f"0..{len(DEFAULT_RIS_X)} for the default RIS positions", R)
    return DEFAULT_RIS_X[:R], DEFAULT_RIS_Y[:R]


@dataclass(frozen=True)
class ScenarioB(ScenarioBase):
    """Paper B's scenario [spec B.9]; defaults are the spec's reconstructed default point.

    Shapes implied: X (P_c, L, N_t), W (P_c, L_r, N_r), phi (R, N), symbols S (K, P_c L),
    Q point clutters jittered in discs, K users jittered in a disc.
    """

    kind = "paper-b"
    Nt: int = 6                    # BS transmit antennas [B structure; value RECON, as A / RJSAC]
    Nr: int = 6                    # BS receive antennas [B structure; value RECON]
    K: int = 3                     # users [B structure; value RECON, as A]
    R: int = 2                     # active RISs [B, deployment figure]
    N: int = 32                    # elements per RIS [RECON: RN = 64 like A]
    Q: int = 3                     # static clutters [B]
    Pc: int = 8                    # pulses per CPI [RECON]
    L: int = 16                    # transmit slots per pulse [RECON]
    psk_order: int = 4             # M-PSK order, QPSK [B: M-PSK; value RECON]
    a_max: float = 5.0             # active-RIS maximum amplitude [B: 3, 5, 8 in Fig. 4]
    power_w: float = 10.0          # per-slot BS power P [RECON]; ||x||^2 = P L P_c
    noise_radar_w: float = 1e-11   # sigma_r^2 = -110 dBW [RECON, value of A]
    noise_ris_w: float = 1e-11     # sigma_v^2 active-RIS thermal noise per element [RECON]; 0 disables
    noise_comm_w: tuple = (1e-11, 1e-11, 1e-11)   # sigma_k^2 [RECON]
    gamma_db: tuple = (10.0, 10.0, 10.0)          # Gamma_k QoS [RECON]
    sigma_t_sq: float = 1.0        # E|alpha_t|^2 [RECON]
    sigma_q_sq: tuple = (10.0, 10.0, 10.0)        # E|alpha_q|^2, "substantial clutter" [RECON]
    c0_db: float = -30.0           # path loss at d0 = 1 m [A; RECON for B]
    ple_direct: float = 2.7        # BS-target / BS-clutter exponent [B]
    ple_ris_scat: float = 2.3      # RIS-target / RIS-clutter exponent [B]
    ple_bu: float = 3.0            # BS-user exponent [B, mapping inferred]
    ple_ru: float = 2.8            # RIS-user exponent [B, mapping inferred]
    ple_br: float = 2.0            # BS-RIS exponent [B, mapping inferred]
    fc_hz: float = 3e9             # carrier [RECON]
    prf_hz: float = 3e3            # pulse repetition frequency [RECON]
    fs_hz: float = 50e6            # slot (sample) rate [RECON]
    bs_pos: tuple = (0.0, 0.0)     # BS position; ULA along x, broadside +y [RECON]
    target_pos: tuple = (0.0, 50.0)               # [RECON]
    target_vel: tuple = (0.0, 30.0)               # m/s, default along the LoS [B: 30 m/s; direction RECON]
    ris_x: tuple = DEFAULT_RIS_X[:2]              # RIS x coordinates, length R [RECON]
    ris_y: tuple = DEFAULT_RIS_Y[:2]              # RIS y coordinates, length R [RECON]
    clutter_x: tuple = (-6.0, 6.0, 0.0)           # clutter centres, length Q [RECON]
    clutter_y: tuple = (49.0, 51.0, 60.0)
    clutter_radius: float = 4.0    # uniform jitter disc [B: "within a 4-meter radius"]
    user_center: tuple = (30.0, 20.0)             # [RECON]
    user_radius: float = 4.0       # uniform disc [B]
    lr_extra: int = -1             # L_r - L; -1 = automatic Delta_max of the target paths [B (7), RECON]
    ris_leg_model: str = "reciprocal"  # "reciprocal" (B default) | "literal" (A's a^H legs) [RECON, spec 0.3]
    user_fading: str = "rayleigh"      # "rayleigh" [B] | "r25_uniform"
    ris_noise_to_users: bool = True    # add sigma_v^2 sum ||Phi^H h_rk||^2 to user noise for SER [RECON]
    n_realisations: int = 100      # Monte-Carlo realisations per point [RECON]
    max_outer: int = 50            # I_max [RECON]
    tol: float = 1e-4              # relative SCNR change for stopping [RECON]
    cm_tol: float = 1e-3           # ||x - y_a|| / ||x|| for stopping [spec B.7 step 5; the polish closes the rest]
    phi_inner: int = 1             # prox-linear MM steps per outer iteration [RECON; spec: 3; 1 is 1.5x faster]
    x_passes: int = 1              # MM+ADMM passes per outer iteration [RECON]
    rho_growth: float = 1.25       # rho <- min(growth rho, rho_max) per iteration; 1 = fixed [RECON; 1.1: ~47 it]
    rho_max_factor: float = 1e4    # rho_max = factor * rho_0 [RECON]
    x_solver: str = "admm"         # "admm" (numpy first-order) | "cvxpy" (Clarabel reference)

    def __post_init__(self):
        check_sizes(self.kind, {f: getattr(self, f) for f in SIZE_LIMITS[self.kind] if hasattr(self, f)})
        check_int("Nt", self.Nt, lo=1)
        check_int("Nr", self.Nr, lo=1)
        K = check_int("K", self.K, lo=1)
        R = check_int("R", self.R, lo=0)
        check_int("N", self.N, lo=1)
        Q = check_int("Q", self.Q, lo=0)
        check_int("Pc", self.Pc, lo=1)
        check_int("L", self.L, lo=1)
        check_choice("psk_order", self.psk_order, PSK_ORDERS)
        check_real("a_max", self.a_max, lo=0.0)
        check_real("power_w", self.power_w, lo=0.0, lo_open=True)
        check_real("noise_radar_w", self.noise_radar_w, lo=0.0, lo_open=True)
        check_real("noise_ris_w", self.noise_ris_w, lo=0.0)
        check_real_list("noise_comm_w", self.noise_comm_w, length=K, lo=0.0, lo_open=True)
        check_real_list("gamma_db", self.gamma_db, length=K)
        check_real("sigma_t_sq", self.sigma_t_sq, lo=0.0, lo_open=True)
        check_real_list("sigma_q_sq", self.sigma_q_sq, length=Q, lo=0.0)
        check_real("c0_db", self.c0_db)
        for f in ("ple_direct", "ple_ris_scat", "ple_bu", "ple_ru", "ple_br"):
            check_real(f, getattr(self, f), lo=0.0)
        for f in ("fc_hz", "prf_hz", "fs_hz"):
            check_real(f, getattr(self, f), lo=0.0, lo_open=True)
        for f in ("bs_pos", "target_pos", "target_vel", "user_center"):
            check_real_list(f, getattr(self, f), length=2)
        check_real_list("ris_x", self.ris_x, length=R)
        check_real_list("ris_y", self.ris_y, length=R)
        check_real_list("clutter_x", self.clutter_x, length=Q)
        check_real_list("clutter_y", self.clutter_y, length=Q)
        check_real("clutter_radius", self.clutter_radius, lo=0.0)
        check_real("user_radius", self.user_radius, lo=0.0)
        check_int("lr_extra", self.lr_extra, lo=-1)
        check_choice("ris_leg_model", self.ris_leg_model, LEG_MODELS)
        check_choice("user_fading", self.user_fading, USER_FADING)
        check_choice("ris_noise_to_users", self.ris_noise_to_users, (True, False))
        check_int("n_realisations", self.n_realisations, lo=1)
        check_int("max_outer", self.max_outer, lo=1)
        check_real("tol", self.tol, lo=0.0)
        check_real("cm_tol", self.cm_tol, lo=0.0)
        check_int("phi_inner", self.phi_inner, lo=0)
        check_int("x_passes", self.x_passes, lo=1)
        check_real("rho_growth", self.rho_growth, lo=1.0)
        check_real("rho_max_factor", self.rho_max_factor, lo=1.0)
        check_choice("x_solver", self.x_solver, ("admm", "cvxpy"))
        # no two points may coincide with the BS or target (angles/delays undefined)
        pts = {"target_pos": self.target_pos}
        pts.update({f"ris_x/ris_y[{r}]": (self.ris_x[r], self.ris_y[r]) for r in range(R)})
        pts.update({f"clutter_x/clutter_y[{q}]": (self.clutter_x[q], self.clutter_y[q]) for q in range(Q)})
        for name, p in pts.items():
            if math.dist(p, self.bs_pos) == 0.0:
                raise ScenarioError(name, "a position different from bs_pos", p)
        for r in range(R):
            if math.dist((self.ris_x[r], self.ris_y[r]), self.target_pos) == 0.0:
                raise ScenarioError(f"ris_x/ris_y[{r}]", "a position different from target_pos",
                                    (self.ris_x[r], self.ris_y[r]))
        for f in ("noise_comm_w", "gamma_db", "sigma_q_sq", "bs_pos", "target_pos", "target_vel",
                  "ris_x", "ris_y", "clutter_x", "clutter_y", "user_center"):
            object.__setattr__(self, f, tuple(float(v) for v in getattr(self, f)))

    # derived quantities -------------------------------------------------------------------------
    @property
    def theta_psk(self) -> float:
        """Theta = pi / Omega [spec A.3]."""
        return math.pi / self.psk_order

    @property
    def amp(self) -> float:
        """Per-antenna amplitude sqrt(P/N_t) [spec B.6 (25)]."""
        return math.sqrt(self.power_w / self.Nt)

    @property
    def wavelength(self) -> float:
        return SPEED_OF_LIGHT / self.fc_hz

    def with_ris_count(self, R: int) -> "ScenarioB":
        """Copy with R RISs at the default positions (Fig. 7 sweep) [spec B.2]."""
        xs, ys = default_ris_positions(R)
        return self.replace(R=R, ris_x=xs, ris_y=ys)
