"""End to end (stretch): paper-A design from calibrated vs uncalibrated knowledge of the BS chains.

World (spec A.2–A.4 plus chain errors): the BS's TX chains multiply the waveform by D_tx = diag(g_tx) and its
RX chains the echo by D_rx = diag(g_rx) (narrowband: the FIR removes the delays, the carrier phase is in
∠g). The radar legs become a' = D_rx a(φ), b' = D_tx b(φ) and the user channels h̃_kᴴ D_tx.
The target/clutter legs come from the geometry prior (LoS, spec A.2), so they are only right once the
chains are calibrated; the user channels are measured over the air with pilots (DirectChannelCal, LS).

Three designs with the lead's ``isac_opt.paper_a.starting`` (φ⁰ by Riemannian ascent, x⁰ by the worst-case CI
margin SOCP) and MVDR receive filters:

* ``true``: chain gains known exactly, exact user channels, MVDR of the true echo;
* ``est``: chain gains from :class:`ChainCal` on the simulated bench (SNR ``snr_db``), user channels from
  pilots, MVDR of the model built from the estimates — evaluated in the true world;
* ``uncal``: ideal chains assumed (g = 1), user channels from pilots, MVDR of the nominal model.

Returns SINRs [dB] evaluated in the true world with :func:`isac_opt.radar.sinr_of_filter`.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from .chains import ChainCal
from .channels import DirectChannelCal
from .sim_bench import draw_chain_truth, measure_chains, measure_direct


def _fold_tx(ch, g):
    """ChannelsA whose transmit legs and user channels include D_tx = diag(g)."""
    gc = np.conj(g)
    return dataclasses.replace(ch, G=ch.G * g[None, :], h_k=ch.h_k * gc[None, :], h_bt=ch.h_bt * gc,
                               h_bq=ch.h_bq * gc[None, :])


def _echo(scn, a, b, X):
    from isac_opt.paper_a.radar import EchoA
    from isac_opt.radar import shift_slots
    bins = (scn.target_bin,) + tuple(scn.clutter_bins)
    s = np.outer(a[0], b[0] @ shift_slots(X, bins[0]))
    c = np.stack([np.outer(a[q + 1], b[q + 1] @ shift_slots(X, bins[q + 1])) for q in range(scn.Q)])
    return EchoA(s=s, c=c, a=a, b=b, xi_q=np.sqrt(np.asarray(scn.xi_q_sq, dtype=np.float64)),
                 noise_w=scn.noise_radar_w, xi0_sq=scn.xi0_sq, bins=bins)


def e2e_sinr(seed: int, snr_db: float = 20.0, scn=None, gain_db_spread: float = 2.0) -> dict:
    """SINR [dB] in the true world of the ``true`` / ``est`` / ``uncal`` designs for one realisation."""
    from isac_opt.paper_a.channels import draw_channels, effective_user_channels, legs
    from isac_opt.ci import ci_margins, ci_thresholds, worst_case_margin_init
    from isac_opt.paper_a.scenario import ScenarioA
    from isac_opt.projections import project_cm
    from isac_opt.paper_a.radar import mvdr_filter, sinr_mvdr, sinr_of_filter
    from isac_opt.paper_a.starting import init_phi

    scn = scn or ScenarioA()
    rng = np.random.default_rng(seed)
    ch = draw_channels(scn, rng)
    M = scn.M
    t_tx = draw_chain_truth(rng, M, gain_db_spread=gain_db_spread)
    t_rx = draw_chain_truth(rng, M, gain_db_spread=gain_db_spread)
    est = {}
    for side, truth in (("tx", t_tx), ("rx", t_rx)):
        cal = ChainCal(n_chains=M, side=side)
        cal.run(measure_chains(cal, truth, snr_db, rng).data)
        est[side] = cal.coefs["gain"]
    gamma = ci_thresholds(scn.noise_comm_w, scn.gamma_db, scn.psk_order)

    def world_legs(phi):
        a, _ = legs(ch, phi, scn.ris_leg_model)
        _, b = legs(_fold_tx(ch, t_tx["gain"]), phi, scn.ris_leg_model)
        return t_rx["gain"][None, :] * a, b

    def design(g_tx, g_rx, exact_users: bool):
        ch_d = _fold_tx(ch, g_tx)
        phi = init_phi(scn, ch_d, np.random.default_rng(seed + 1))
        H_true = effective_user_channels(_fold_tx(ch, t_tx["gain"]), phi)        # (K, M) over the air
        if exact_users:
            H_use = H_true
        else:
            dc = DirectChannelCal(n_rx=scn.K, n_tx=M, n_slots=2 * M)
            dc.run(measure_direct(dc, H_true, snr_db, rng).data)
            H_use = dc.coefs["H"]
        X, _ = worst_case_margin_init(H_use, ch.S, gamma, scn.amp, scn.psk_order)
        X = project_cm(X, scn.amp)
        a_w, b_w = world_legs(phi)
        e_world = _echo(scn, a_w, b_w, X)
        if exact_users:
            sinr = sinr_mvdr(e_world)
        else:
            a_m, _ = legs(ch, phi, scn.ris_leg_model)
            _, b_m = legs(ch_d, phi, scn.ris_leg_model)
            w = mvdr_filter(_echo(scn, g_rx[None, :] * a_m, b_m, X))
            sinr = sinr_of_filter(e_world, w)
        margin = ci_margins(H_true @ X, ch.S, scn.psk_order)
        ok = bool(np.all(margin >= gamma[:, None] * (1 - 1e-6)))
        return 10 * np.log10(sinr), ok

    s_true, ok_true = design(t_tx["gain"], t_rx["gain"], True)
    s_est, ok_est = design(est["tx"], est["rx"], False)
    s_unc, ok_unc = design(np.ones(M, complex), np.ones(M, complex), False)
    return {"seed": seed, "snr_db": snr_db, "sinr_true_db": float(s_true), "sinr_est_db": float(s_est),
            "sinr_uncal_db": float(s_unc), "ci_ok_true": ok_true, "ci_ok_est": ok_est, "ci_ok_uncal": ok_unc}
