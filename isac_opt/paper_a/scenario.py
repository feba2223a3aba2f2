"""Paper A's scenario [spec A.1, A.2, A.12]: a frozen, validated dataclass (TOML via the shared base).

Units: powers in W, angles in rad, distances in m. ``*_db`` fields are in dB.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..scenario import LEG_MODELS, PSK_ORDERS, SIZE_LIMITS, USER_FADING, ScenarioBase, check_sizes
from ..validate import check_choice, check_int, check_int_list, check_real, check_real_list


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
