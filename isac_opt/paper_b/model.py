"""Paper B's geometry, channels and space-time (STAP) echo model [spec B.2-B.5].

Layout (spec D.1): the waveform is ``X`` of shape (P_c, L, N_t) with ``X[p, l] = x_p[l]``, so the stacked
vector of the paper is ``x = X.reshape(-1)`` (pulse, slot, antenna - antenna fastest). The filter is
``W`` of shape (P_c, L_r, N_r) likewise. RIS coefficients are ``phi`` of shape (R, N).

Every path matrix is rank one, ``H_pi(phi) = rho_pi(phi) tau_pi(phi)^T`` (receive column times transmit
row), with, for scatterer s (target or clutter q) and RIS r:

* path 0 (BS -> s -> BS):            rho = rx_b[s],          tau = tx_b[s]
* path (r,1) (BS -> s -> RIS -> BS): rho = E_rx[s, r] phi_r, tau = tx_b[s]
* path (r,2) (BS -> RIS -> s -> BS): rho = rx_b[s],          tau = E_tx[s, r]^T phi_r
* path (r,3) (BS -> RIS -> s -> RIS -> BS): rho = E_rx[s, r] phi_r, tau = E_tx[s, r]^T phi_r

where ``rx_b = beta_bs a_Nr(theta_bs)``, ``tx_b = beta_bs a'_Nt(theta_bs)``,
``E_rx = beta_rs G~_r diag(a_N(theta_rs))`` and ``E_tx = beta_rs diag(a'_N(theta_rs)) G_r``; ``a'`` is
``a`` in the reciprocal leg model and ``a^*`` in the literal one (spec B.2 (3a)-(3d), B.7 step 4).

Normalisation (spec 0.3 / D.4): all receive legs are divided by sigma_r, so the receiver noise is
CN(0, I) and SCNR values are unchanged. Shifts are slicing; no Kronecker product is ever formed
(the explicit forms live in the tests only).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..geometry import angle_from, distance, path_loss, ula_steering
from .scenario import SPEED_OF_LIGHT, ScenarioB

BS_AXIS = np.array([1.0, 0.0])    # BS ULA along x, broadside +y [spec B.2]
RIS_AXIS = np.array([0.0, 1.0])   # RIS ULAs along y [spec B.2]


# --------------------------------------------------------------------------------------------------
# data containers
# --------------------------------------------------------------------------------------------------
@dataclass
class Scatterer:
    """Legs, delays and Dopplers of one scatterer (target or clutter) [spec B.2].

    rx_b : (N_r,) complex; tx_b : (N_t,) complex; E_rx : (R, N_r, N); E_tx : (R, N, N_t);
    delay : (1 + 3R,) int, order [0, (1,1), (1,2), (1,3), (2,1), ...];
    doppler : (1 + 3R, P_c) complex slow-time vectors d_pi (all ones for clutter);
    freq : (1 + 3R,) Doppler frequencies [Hz].
    """

    rx_b: np.ndarray
    tx_b: np.ndarray
    E_rx: np.ndarray
    E_tx: np.ndarray
    delay: np.ndarray
    doppler: np.ndarray
    freq: np.ndarray


@dataclass
class ChannelsB:
    """One realisation of paper B's channels, normalised to unit receiver noise [spec B.2-B.5].

    Radar: ``target`` and ``clutter`` (list of Q :class:`Scatterer`), ``sigma_t_sq``, ``sigma_q_sq`` (Q,),
    ``Gn`` (R, N_r, N) = (sigma_v/sigma_r) G~_r (RIS noise to the BS).
    Communication: ``hd_H`` (K, N_t) rows h_k^H; ``hr_H`` (R, K, N) rows h_{r,k}^H; ``G`` (R, N, N_t) = G_r;
    ``S`` (K, P_c L) unit-modulus PSK symbols; ``noise_comm_w`` (K,), ``gamma_lin`` (K,) thresholds
    Gamma_k (linear); ``noise_ris_w`` sigma_v^2 for the user-side RIS noise.
    Sizes: ``Nt, Nr, N, R, K, Q, Pc, L, Lr``; ``amp`` = sqrt(P/N_t); ``a_max``; ``psk_order``.
    ``geometry`` keeps positions/angles/distances (dict of floats/arrays) for plots and tests.
    """

    Nt: int
    Nr: int
    N: int
    R: int
    K: int
    Q: int
    Pc: int
    L: int
    Lr: int
    amp: float
    a_max: float
    psk_order: int
    sigma_t_sq: float
    sigma_q_sq: np.ndarray
    target: Scatterer
    clutter: list
    Gn: np.ndarray
    hd_H: np.ndarray
    hr_H: np.ndarray
    G: np.ndarray
    S: np.ndarray
    noise_comm_w: np.ndarray
    gamma_lin: np.ndarray
    noise_ris_w: float = 0.0
    ris_noise_to_users: bool = True
    leg_model: str = "reciprocal"
    geometry: dict = field(default_factory=dict)

    @property
    def n_paths(self) -> int:
        return 1 + 3 * self.R

    def without_ris(self) -> "ChannelsB":
        """The w/o-RIS reduction (R = 0, same L_r) [spec B.8, V-17]."""
        def strip(s: Scatterer) -> Scatterer:
            return Scatterer(s.rx_b, s.tx_b, s.E_rx[:0], s.E_tx[:0], s.delay[:1], s.doppler[:1], s.freq[:1])
        return replace(self, R=0, target=strip(self.target), clutter=[strip(c) for c in self.clutter],
                       Gn=self.Gn[:0], hr_H=self.hr_H[:0], G=self.G[:0])

    def zero_phi(self) -> np.ndarray:
        return np.zeros((self.R, self.N), dtype=np.complex128)


# --------------------------------------------------------------------------------------------------
# geometry and realisation draw
# --------------------------------------------------------------------------------------------------
def _tx(a: np.ndarray, leg_model: str) -> np.ndarray:
    """Transmit-side steering: a (reciprocal) or a^* (literal) [spec 0.3, B.2]."""
    return a if leg_model == "reciprocal" else np.conj(a)


def path_ranges(d_bs: float, d_rs, d_br) -> np.ndarray:
    """Total path lengths [0, (r,1), (r,2), (r,3) ...] for one scatterer [spec B.2 table]."""
    out = [2.0 * d_bs]
    for r in range(len(d_rs)):
        out += [d_bs + d_rs[r] + d_br[r], d_br[r] + d_rs[r] + d_bs, 2.0 * (d_br[r] + d_rs[r])]
    return np.asarray(out)


def bistatic_doppler(vel, p_s, p_a, p_b, wavelength: float) -> float:
    """f = -(v.u_{A->S} + v.u_{B->S}) / lambda [spec B.2]."""
    v = np.asarray(vel, dtype=np.float64)
    ua = (np.asarray(p_s) - np.asarray(p_a)) / distance(p_s, p_a)
    ub = (np.asarray(p_s) - np.asarray(p_b)) / distance(p_s, p_b)
    return float(-(v @ ua + v @ ub) / wavelength)


def target_delays(scn: ScenarioB) -> np.ndarray:
    """Integer delays Delta_pi of the target paths relative to 2 d_bt [spec B.2]."""
    bs, pt = np.asarray(scn.bs_pos), np.asarray(scn.target_pos)
    ris = np.stack([scn.ris_x, scn.ris_y], axis=-1) if scn.R else np.zeros((0, 2))
    d_bt = distance(bs, pt)
    rng_ = path_ranges(d_bt, distance(ris, pt), distance(ris, bs))
    return np.rint((rng_ - 2 * d_bt) / (SPEED_OF_LIGHT / scn.fs_hz)).astype(int)


def receive_length(scn: ScenarioB) -> int:
    """L_r = L + Delta_max (or L + lr_extra) [spec B.2 (7)]."""
    if scn.lr_extra >= 0:
        return scn.L + scn.lr_extra
    return scn.L + max(0, int(target_delays(scn).max()))


def _scatterer(scn, p_s, vel, bs, ris, G, Gt, d_br, ple_bs, moving: bool) -> Scatterer:
    lm = scn.ris_leg_model
    Nt, Nr, N, R, Pc = scn.Nt, scn.Nr, scn.N, scn.R, scn.Pc
    d_bs = float(distance(bs, p_s))
    th_bs = float(angle_from(bs, p_s, BS_AXIS))
    b_bs = float(path_loss(d_bs, ple_bs, scn.c0_db))
    rx_b = b_bs * ula_steering(Nr, th_bs)
    tx_b = b_bs * _tx(ula_steering(Nt, th_bs), lm)
    E_rx = np.zeros((R, Nr, N), complex)
    E_tx = np.zeros((R, N, Nt), complex)
    d_rs = np.zeros(R)
    for r in range(R):
        d_rs[r] = distance(ris[r], p_s)
        th_rs = float(angle_from(ris[r], p_s, RIS_AXIS))
        b_rs = float(path_loss(d_rs[r], scn.ple_ris_scat, scn.c0_db))
        a_rs = ula_steering(N, th_rs)
        E_rx[r] = b_rs * Gt[r] * a_rs[None, :]
        E_tx[r] = b_rs * _tx(a_rs, lm)[:, None] * G[r]
    delay = np.rint((path_ranges(d_bs, d_rs, d_br) - 2 * _d_bt(scn)) / (SPEED_OF_LIGHT / scn.fs_hz)).astype(int)
    freq = np.zeros(1 + 3 * R)
    if moving:
        lam = scn.wavelength
        freq[0] = bistatic_doppler(vel, p_s, bs, bs, lam)
        for r in range(R):
            freq[1 + 3 * r] = bistatic_doppler(vel, p_s, bs, ris[r], lam)      # BS -> T -> RIS
            freq[2 + 3 * r] = bistatic_doppler(vel, p_s, ris[r], bs, lam)      # RIS -> T -> BS
            freq[3 + 3 * r] = bistatic_doppler(vel, p_s, ris[r], ris[r], lam)
    p = np.arange(Pc)
    doppler = np.exp(2j * np.pi * freq[:, None] * p[None, :] / scn.prf_hz)
    return Scatterer(rx_b, tx_b, E_rx, E_tx, delay, doppler, freq)


def _d_bt(scn) -> float:
    return float(distance(scn.bs_pos, scn.target_pos))


def _disc(rng: np.random.Generator, centre, radius: float, n: int) -> np.ndarray:
    """n points uniform in a disc (sqrt-radius sampling)."""
    rad = radius * np.sqrt(rng.uniform(size=n))
    ang = rng.uniform(0, 2 * np.pi, size=n)
    return np.asarray(centre)[None, :] + np.stack([rad * np.cos(ang), rad * np.sin(ang)], -1)


def _cn(rng, shape, fading: str) -> np.ndarray:
    if fading == "rayleigh":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) / np.sqrt(2)
    return (rng.uniform(size=shape) + 1j * rng.uniform(size=shape)) / np.sqrt(2)


def psk_symbols(rng: np.random.Generator, order: int, shape) -> np.ndarray:
    """i.i.d. uniform M-PSK symbols e^{j(2m+1)pi/M} (QPSK: e^{j pi/4} ...) [spec A.2]."""
    m = rng.integers(0, order, size=shape)
    return np.exp(1j * np.pi * (2 * m + 1) / order)


def draw_channels(scn: ScenarioB, rng: np.random.Generator) -> ChannelsB:
    """Draw one realisation: clutter jitter, user positions, Rayleigh user links, PSK symbols [spec B.2].

    Draw order (fixed, for reproducibility): clutter positions, user positions, g_k (K, N_t),
    g_{r,k} (R, K, N), symbols (K, P_c L).
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError("rng: expected a numpy.random.Generator")
    lm = scn.ris_leg_model
    Nt, Nr, N, R, K, Q = scn.Nt, scn.Nr, scn.N, scn.R, scn.K, scn.Q
    bs, pt = np.asarray(scn.bs_pos), np.asarray(scn.target_pos)
    ris = np.stack([scn.ris_x, scn.ris_y], axis=-1) if R else np.zeros((0, 2))
    d_br = distance(ris, bs) if R else np.zeros(0)
    G = np.zeros((R, N, Nt), complex)
    Gt = np.zeros((R, Nr, N), complex)
    th_br = np.zeros(R)
    th_rb = np.zeros(R)
    for r in range(R):
        th_br[r] = angle_from(bs, ris[r], BS_AXIS)     # RIS seen from the BS
        th_rb[r] = angle_from(ris[r], bs, RIS_AXIS)    # BS seen from the RIS
        b = float(path_loss(d_br[r], scn.ple_br, scn.c0_db))
        a_rb = ula_steering(N, th_rb[r])
        G[r] = b * np.outer(a_rb, _tx(ula_steering(Nt, th_br[r]), lm))     # BS-Tx -> RIS
        Gt[r] = b * np.outer(ula_steering(Nr, th_br[r]), _tx(a_rb, lm))    # RIS -> BS-Rx
    cl = _disc(rng, np.zeros(2), scn.clutter_radius, Q) + np.stack([scn.clutter_x, scn.clutter_y], -1) \
        if Q else np.zeros((0, 2))
    users = _disc(rng, scn.user_center, scn.user_radius, K)
    s_r = 1.0 / np.sqrt(scn.noise_radar_w)
    tgt = _scatterer(scn, pt, scn.target_vel, bs, ris, G, Gt, d_br, scn.ple_direct, True)
    clutter = [_scatterer(scn, cl[q], (0.0, 0.0), bs, ris, G, Gt, d_br, scn.ple_direct, False) for q in range(Q)]
    for s in [tgt] + clutter:
        s.rx_b = s.rx_b * s_r
        s.E_rx = s.E_rx * s_r
    Lr = receive_length(scn)
    # communication [spec B.5]: h_k = beta(d_bk, 3.0) g_k, h_{r,k} = beta(d_rk, 2.8) g_{r,k}
    g = _cn(rng, (K, Nt), scn.user_fading)
    gr = _cn(rng, (R, K, N), scn.user_fading)
    b_bu = path_loss(distance(users, bs), scn.ple_bu, scn.c0_db)
    hd_H = np.conj(b_bu[:, None] * g)
    hr_H = np.zeros((R, K, N), complex)
    for r in range(R):
        b_ru = path_loss(distance(users, ris[r]), scn.ple_ru, scn.c0_db)
        hr_H[r] = np.conj(b_ru[:, None] * gr[r])
    S = psk_symbols(rng, scn.psk_order, (K, scn.Pc * scn.L))
    Gn = np.sqrt(scn.noise_ris_w) * s_r * Gt
    geom = dict(bs=bs, target=pt, ris=ris, clutter=cl, users=users, d_br=d_br, theta_br=th_br,
                theta_rb=th_rb, velocity=np.asarray(scn.target_vel))
    return ChannelsB(Nt=Nt, Nr=Nr, N=N, R=R, K=K, Q=Q, Pc=scn.Pc, L=scn.L, Lr=Lr, amp=scn.amp,
                     a_max=scn.a_max, psk_order=scn.psk_order, sigma_t_sq=scn.sigma_t_sq,
                     sigma_q_sq=np.asarray(scn.sigma_q_sq, float), target=tgt, clutter=clutter, Gn=Gn,
                     hd_H=hd_H, hr_H=hr_H, G=G, S=S, noise_comm_w=np.asarray(scn.noise_comm_w, float),
                     gamma_lin=10.0 ** (np.asarray(scn.gamma_db, float) / 10.0),
                     noise_ris_w=scn.noise_ris_w, ris_noise_to_users=scn.ris_noise_to_users,
                     leg_model=lm, geometry=geom)


# --------------------------------------------------------------------------------------------------
# path legs and fast operators
# --------------------------------------------------------------------------------------------------
def path_legs(s: Scatterer, phi: np.ndarray):
    """List of (rho, tau, delay, doppler) for every path of ``s`` at ``phi`` (R, N) [spec B.2]."""
    out = [(s.rx_b, s.tx_b, int(s.delay[0]), s.doppler[0])]
    for r in range(s.E_rx.shape[0]):
        rho_r = s.E_rx[r] @ phi[r]
        tau_r = phi[r] @ s.E_tx[r]
        out.append((rho_r, s.tx_b, int(s.delay[1 + 3 * r]), s.doppler[1 + 3 * r]))
        out.append((s.rx_b, tau_r, int(s.delay[2 + 3 * r]), s.doppler[2 + 3 * r]))
        out.append((rho_r, tau_r, int(s.delay[3 + 3 * r]), s.doppler[3 + 3 * r]))
    return out


def _ranges(delay: int, L: int, Lr: int):
    """Index ranges: receive snapshot j = l + delay for transmit slot l (valid part only)."""
    l0 = max(0, -delay)
    l1 = min(L, Lr - delay)
    return l0, l1, l0 + delay, l1 + delay


def apply_response(legs, X: np.ndarray, Lr: int) -> np.ndarray:
    """Y = T X for T = sum_pi diag(d_pi) (x) J_pi^T (x) H_pi [spec B.3]: X (P_c, L, N_t) -> (P_c, L_r, N_r)."""
    Pc, L, _ = X.shape
    Y = np.zeros((Pc, Lr, legs[0][0].shape[0]), complex)
    for rho, tau, dl, d in legs:
        l0, l1, j0, j1 = _ranges(dl, L, Lr)
        if l1 <= l0:
            continue
        s = X[:, l0:l1, :] @ tau                      # (Pc, n) = tau^T x_{p,l}
        Y[:, j0:j1, :] += (d[:, None] * s)[:, :, None] * rho[None, None, :]
    return Y


def apply_adjoint(legs, W: np.ndarray, L: int) -> np.ndarray:
    """T^H W: W (P_c, L_r, N_r) -> (P_c, L, N_t) [spec B.3]."""
    Pc, Lr, _ = W.shape
    Xg = np.zeros((Pc, L, legs[0][1].shape[0]), complex)
    for rho, tau, dl, d in legs:
        l0, l1, j0, j1 = _ranges(dl, L, Lr)
        if l1 <= l0:
            continue
        g = W[:, j0:j1, :] @ np.conj(rho)             # rho^H w_{p,j}
        Xg[:, l0:l1, :] += (np.conj(d)[:, None] * g)[:, :, None] * np.conj(tau)[None, None, :]
    return Xg


def cross_matrix(W: np.ndarray, X: np.ndarray, delay: int, d: np.ndarray) -> np.ndarray:
    """M_pi = sum_p d[p] sum_l conj(w_{p,l+Delta}) x_{p,l}^T (N_r, N_t), so w^H H_pi-term = rho^T M tau."""
    Pc, L, _ = X.shape
    l0, l1, j0, j1 = _ranges(delay, L, W.shape[1])
    if l1 <= l0:
        return np.zeros((W.shape[2], X.shape[2]), complex)
    return np.einsum("p,pli,plj->ij", d, np.conj(W[:, j0:j1, :]), X[:, l0:l1, :])


class Model:
    """Fast evaluation of paper B's radar model for one realisation [spec B.3, B.4].

    All methods take X (P_c, L, N_t), phi (R, N), W (P_c, L_r, N_r) arrays.
    """

    def __init__(self, ch: ChannelsB):
        self.ch = ch

    # responses ---------------------------------------------------------------------------------
    def target(self, X, phi):
        """t = T(phi) x, shape (P_c, L_r, N_r)."""
        return apply_response(path_legs(self.ch.target, phi), X, self.ch.Lr)

    def clutter(self, X, phi):
        """c_q = C_q(phi) x for all q, shape (Q, P_c, L_r, N_r)."""
        ch = self.ch
        out = np.zeros((ch.Q, ch.Pc, ch.Lr, ch.Nr), complex)
        for q, c in enumerate(ch.clutter):
            out[q] = apply_response(path_legs(c, phi), X, ch.Lr)
        return out

    def target_adj(self, W, phi):
        """a = T(phi)^H w, shape (P_c, L, N_t)."""
        return apply_adjoint(path_legs(self.ch.target, phi), W, self.ch.L)

    def clutter_adj(self, W, phi):
        """e_q = C_q(phi)^H w, shape (Q, P_c, L, N_t)."""
        ch = self.ch
        return np.stack([apply_adjoint(path_legs(c, phi), W, ch.L) for c in ch.clutter]) if ch.Q else \
            np.zeros((0, ch.Pc, ch.L, ch.Nt), complex)

    # noise -------------------------------------------------------------------------------------
    def noise_block(self, phi):
        """B_v(phi) / sigma_r^2 = I + sum_r Gn_r diag|phi_r|^2 Gn_r^H, shape (N_r, N_r) [spec B.3]."""
        ch = self.ch
        B = np.eye(ch.Nr, dtype=complex)
        for r in range(ch.R):
            B += (ch.Gn[r] * np.abs(phi[r]) ** 2) @ ch.Gn[r].conj().T
        return B

    def ris_noise_weights(self, W):
        """Lambda_w diagonal (R, N): lambda_{r,n} = sum_{p,l} |gn_{r,n}^H w_{p,l}|^2 [spec B.7 step 4]."""
        ch = self.ch
        if ch.R == 0:
            return np.zeros((0, ch.N))
        Wf = W.reshape(-1, ch.Nr)
        return np.stack([np.sum(np.abs(Wf @ np.conj(ch.Gn[r])) ** 2, axis=0) for r in range(ch.R)])

    # MVDR / SCNR -------------------------------------------------------------------------------
    def mvdr(self, X, phi, t=None, C=None):
        """MVDR filter via Woodbury [spec B.4 (27)-(29)].

        Returns (W, scnr) with W = R^{-1} t (unnormalised; shape (P_c, L_r, N_r)) and
        SCNR* = sigma_t^2 t^H R^{-1} t.
        """
        ch = self.ch
        t = self.target(X, phi) if t is None else t
        C = self.clutter(X, phi) if C is None else C
        Bv = self.noise_block(phi)
        Binv = np.linalg.inv(Bv)
        Xi = lambda V: V @ Binv.T                     # (I (x) B^{-1}) applied to (..., N_r) blocks
        sq = np.sqrt(ch.sigma_q_sq)
        U = (sq[:, None, None, None] * C).reshape(ch.Q, -1)      # rows: sigma_q c_q^T
        XiT = Xi(t).reshape(-1)
        if ch.Q:
            XiU = Xi((sq[:, None, None, None] * C)).reshape(ch.Q, -1)
            Smat = np.eye(ch.Q) + np.conj(U) @ XiU.T                    # I + U^H Xi U
            coef = np.linalg.solve(Smat, np.conj(U) @ XiT)
            v = XiT - XiU.T @ coef
        else:
            v = XiT
        scnr = float(ch.sigma_t_sq * np.real(np.vdot(t.reshape(-1), v)))
        return v.reshape(t.shape), scnr

    def scnr(self, W, X, phi, t=None, C=None):
        """SCNR(w) = sigma_t^2 |w^H t|^2 / (w^H R w) [spec B.4 (19)]."""
        num, den = self.scnr_parts(W, X, phi, t, C)
        return num / den

    def scnr_parts(self, W, X, phi, t=None, C=None):
        ch = self.ch
        t = self.target(X, phi) if t is None else t
        C = self.clutter(X, phi) if C is None else C
        num = ch.sigma_t_sq * abs(np.vdot(W, t)) ** 2
        wc = np.array([np.vdot(W, C[q]) for q in range(ch.Q)])
        Bv = self.noise_block(phi)
        Wf = W.reshape(-1, ch.Nr)
        noise = float(np.real(np.sum(np.conj(Wf) * (Wf @ Bv.T))))
        den = float(np.sum(ch.sigma_q_sq * np.abs(wc) ** 2)) + noise
        return float(num), den

    # polynomial form in phi (spec B.7 step 4) -------------------------------------------------
    def poly(self, s: Scatterer, W, X):
        """Coefficients (c0, c1 (R, N), C2 (R, N, N)) with w^H T_s(phi) x = c0 + sum_r c1_r^T phi_r
        + phi_r^T C2_r phi_r [spec B.7 step 4, V-4(iii)]."""
        R = s.E_rx.shape[0]
        M0 = cross_matrix(W, X, int(s.delay[0]), s.doppler[0])
        c0 = s.rx_b @ M0 @ s.tx_b
        c1 = np.zeros((R, self.ch.N), complex)
        C2 = np.zeros((R, self.ch.N, self.ch.N), complex)
        for r in range(R):
            M1 = cross_matrix(W, X, int(s.delay[1 + 3 * r]), s.doppler[1 + 3 * r])
            M2 = cross_matrix(W, X, int(s.delay[2 + 3 * r]), s.doppler[2 + 3 * r])
            M3 = cross_matrix(W, X, int(s.delay[3 + 3 * r]), s.doppler[3 + 3 * r])
            c1[r] = s.E_rx[r].T @ (M1 @ s.tx_b) + s.E_tx[r] @ (M2.T @ s.rx_b)
            C2[r] = s.E_rx[r].T @ M3 @ s.E_tx[r].T
        return c0, c1, C2


def poly_eval(c0, c1, C2, phi):
    """u(phi) = c0 + sum_r c1_r^T phi_r + phi_r^T C2_r phi_r."""
    return c0 + np.sum(c1 * phi) + np.einsum("rn,rnm,rm->", phi, C2, phi)


def poly_grad(c1, C2, phi):
    """Holomorphic derivative du/dphi = c1 + (C2 + C2^T) phi, shape (R, N)."""
    return c1 + np.einsum("rnm,rm->rn", C2 + np.transpose(C2, (0, 2, 1)), phi)


# --------------------------------------------------------------------------------------------------
# communication [spec B.5]
# --------------------------------------------------------------------------------------------------
def effective_channels(ch: ChannelsB, phi) -> np.ndarray:
    """Rows h~_k^H(phi) = h_k^H + sum_r h_{r,k}^H Phi_r G_r, shape (K, N_t)."""
    H = ch.hd_H.copy()
    for r in range(ch.R):
        H = H + (ch.hr_H[r] * phi[r][None, :]) @ ch.G[r]
    return H


def user_noise(ch: ChannelsB, phi) -> np.ndarray:
    """User noise sigma_k^2 (+ sigma_v^2 sum_r ||Phi_r^H h_{r,k}||^2 when enabled) [spec B.5], (K,)."""
    n = ch.noise_comm_w.copy()
    if ch.ris_noise_to_users and ch.R:
        n = n + ch.noise_ris_w * np.sum(np.abs(ch.hr_H * phi[:, None, :]) ** 2, axis=(0, 2))
    return n
