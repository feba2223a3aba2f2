"""Training of the DoA networks: unfolded ADMM-PHR-ALM-DFP (layer by layer) and the unsupervised MLP.

Layer-by-layer scheme [spec A.6 training, RECON]: for t = 1..T the states after layer t−1 are cached
without gradients for the whole training set, and the parameters of layer t are trained with Adam on
ℓ = mean(CRB/CRB0) + ω mean(Σ max(g/γ, 0)²) at the layer output (gradients flow through the layer's
J·R quasi-Newton steps, including the autograd CRB gradient: create_graph).

``run(out_dir, scenario, quick, **kw)`` is the ``isac-testbed train doa`` entry point.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from tqdm import tqdm

from ..channels import draw_channels, realisation_rng
from ..scenario import ScenarioA
from ...scenario import load_scenario
from .model import DoaBatch, DoaConfig, DoaNet, repair_ci, run_classical, start_points
from .unsupervised import UnsupervisedDoa, features

__all__ = ["make_dataset", "train_unfolded", "train_unsupervised", "run", "TRAIN_DEFAULTS"]

# The configuration the shipped paper-a PHR weights (recipe v3: 8 Adam updates per layer at lr 0.05) and
# unsupervised MLPs were trained with (≈ 4 min + 1 min on 2 shared CPU cores; the ALM ablation ships
# recipe v1, updates_per_layer=4, see isac_opt/weights/doa_weights.md);
# unsup_omega_end = 0: constant ω; unsup_n_train = 0: the unfolded network's training set.
TRAIN_DEFAULTS = dict(T=60, J=2, R=5, dfp_variant="identity", n_train=128, n_test=32, batch=32,
                      updates_per_layer=8, lr=0.05, omega=1.0, unsup_epochs=100, unsup_hidden="1024,512,256",
                      unsup_lr=1e-4, unsup_omega=10.0, unsup_omega_end=100.0, unsup_n_train=0, unsup_residual=1,
                      Ks="3,2,4", seed=2026, handler="phr", unsup=1, unfolded=1, train_layers=0, kind="")
QUICK = dict(T=3, J=2, R=2, n_train=8, n_test=4, batch=8, updates_per_layer=2, unsup_epochs=5,
             unsup_hidden="64,32,16", Ks="3")


def make_dataset(scn: ScenarioA, n: int, seed: int, offset: int = 0):
    """Channels of realisations offset..offset+n−1 (``realisation_rng(seed, i)``) and their A.10 starts."""
    chs = [draw_channels(scn, realisation_rng(seed, offset + i)) for i in range(n)]
    return chs, start_points(scn, chs, "ris", seed + offset)


def layer_loss(batch: DoaBatch, st, omega: float):
    f = batch.objective.value(st.x, st.phi)
    g = torch.clamp(batch.ci.g(st.x, st.phi) / batch.prob.det.gscale[:, None, None], min=0.0)   # units of γ
    return f.mean() + omega * (g ** 2).sum(dim=(1, 2)).mean()


def train_unfolded(scn, chs, starts, cfg: DoaConfig, batch_size=32, updates_per_layer=2, lr=3e-3,
                   omega=1.0, seed=0, log=print, train_layers: int = 0, on_layer=None) -> DoaNet:
    """Layer-by-layer training of a :class:`DoaNet` on (chs, starts).

    ``train_layers`` (0 = all T): train only the first n layers; the others keep their initial parameters
    (the classical constant steps); ``net.meta["layers_trained"]`` records n. ``on_layer(net, t)`` is
    called after every trained layer (e.g. to save the weights so far)."""
    net = DoaNet(cfg, scn, seed=seed)
    full = DoaBatch(scn, chs, starts, cfg, "ris")
    n = full.batch
    gen = torch.Generator().manual_seed(int(seed))
    st = full.state0()
    acfg = cfg.admm(True)
    n_lay = int(train_layers) or cfg.T
    for t in tqdm(range(n_lay), desc="unfolded layers", file=sys.stderr, leave=False):
        lay = net.net.layers[t]
        snap = {k: v.clone() for k, v in lay.state_dict().items()}
        with torch.no_grad():
            l_init = layer_loss(full, net.net(st.detach(), full.objective, full.constraint, layers=[t],
                                              cfg=acfg), omega).item()
        opt = torch.optim.Adam(lay.parameters(), lr=lr)
        for it in range(updates_per_layer):
            idx = torch.randperm(n, generator=gen)[:batch_size]
            sub = _sub_batch(full, idx)
            out = net.net(st.select(idx).detach(), sub.objective, sub.constraint, layers=[t], cfg=acfg)
            loss = layer_loss(sub, out, omega)
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():
            st1 = net.net(st.detach(), full.objective, full.constraint, layers=[t], cfg=acfg)
            lv = layer_loss(full, st1, omega).item()
            if not lv < l_init:     # safeguard [RECON]: keep layer t's initial steps if training did not help
                lay.load_state_dict(snap)
                st1 = net.net(st.detach(), full.objective, full.constraint, layers=[t], cfg=acfg)
                log(f"layer {t + 1}: training did not lower the loss ({lv:.4f} ≥ {l_init:.4f}); reverted")
                lv = l_init
            st = st1
        net.meta["layers_trained"] = t + 1
        if t % 10 == 0 or t == n_lay - 1 or on_layer is not None:
            log(f"layer {t + 1}/{n_lay}: train loss {lv:.4f}, mean CRB {full.crb(st.x, st.phi).mean():.4e}")
        if on_layer is not None:
            on_layer(net, t)
    return net


def _sub_batch(full: DoaBatch, idx) -> DoaBatch:
    b = object.__new__(DoaBatch)
    b.__dict__.update(full.__dict__)
    b.prob = full.prob.select(idx)
    from .crb_torch import CrbObjective
    from ..unfold import CIConstraint
    b.objective = CrbObjective(b.prob, full.cfg.ridge)
    b.ci = CIConstraint(b.prob.det)          # the selected problem carries its per-sample gscale
    b.constraint = None if full.constraint is None else b.ci
    b.u0, b.phi0 = full.u0[idx], full.phi0[idx]
    return b


def train_unsupervised(scn, chs, starts, K_max: int, hidden=(1024, 512, 256), epochs=150, batch_size=32,
                       lr=1e-3, omega=10.0, seed=0, log=print, omega_end=None,
                       residual: bool = False) -> UnsupervisedDoa:
    """Adam on CRB/CRB(A.10 start) + ω Σ max(g/γ, 0)² [spec A.11.5].

    ``omega_end``: if given, ω ramps geometrically from ``omega`` (first epoch) to ``omega_end`` (last
    epoch) [RECON: a fixed ω = 10 leaves ≈ 75 % of the CI constraints violated].
    ``residual``: the MLP outputs phase corrections to the A.10 start (see :class:`UnsupervisedDoa`).
    """
    torch.manual_seed(int(seed))   # BatchNorm/Adam have no generator argument; training only
    model = UnsupervisedDoa(scn, K_max, hidden, seed, residual)
    b = DoaBatch(scn, chs, starts, DoaConfig(), "ris")
    if residual:   # realisations whose A.10 start violates CI would dominate the penalty: left out
        keep = [i for i, v in enumerate(b.violation(b.u0, b.phi0).tolist()) if v <= 0]
        if len(keep) < len(chs):
            log(f"unsupervised: {len(chs) - len(keep)} of {len(chs)} training starts violate CI; left out")
            chs, starts = [chs[i] for i in keep], [starts[i] for i in keep]
            b = DoaBatch(scn, chs, starts, DoaConfig(), "ris")
    feats = features(scn, chs, K_max, starts if residual else None)
    u0, phi0 = (b.u0, b.phi0) if residual else (None, None)
    sel = (lambda idx: (u0[idx], phi0[idx])) if residual else (lambda idx: None)
    crb_ref = b.crb(b.u0, b.phi0)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    n = len(chs)
    gen = torch.Generator().manual_seed(int(seed))
    for ep in tqdm(range(epochs), desc="unsupervised epochs", file=sys.stderr, leave=False):
        w = omega if omega_end is None else omega * (omega_end / omega) ** (ep / max(epochs - 1, 1))
        model.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, batch_size):
            idx = perm[i:i + batch_size]
            if len(idx) < 2:
                continue
            loss, _ = model.loss(scn, b.prob.select(idx), feats[idx], crb_ref[idx], w, sel(idx))
            opt.zero_grad()
            loss.backward()
            opt.step()
        if ep % 25 == 0 or ep == epochs - 1:
            model.eval()
            with torch.no_grad():
                lv, c = model.loss(scn, b.prob, feats, crb_ref, w, sel(slice(None)))
            log(f"epoch {ep + 1}/{epochs}: ω {w:.3g}, loss {lv.item():.4f}, mean CRB {c.mean():.4e}")
    model.eval()
    return model


def _parse(kw: dict, quick: bool) -> dict:
    o = dict(TRAIN_DEFAULTS)
    if quick:
        o.update(QUICK)
    unknown = set(kw) - set(o)
    if unknown:
        raise ValueError(f"train doa: unknown option(s) {sorted(unknown)}; expected any of {sorted(o)}")
    for k, v in kw.items():
        o[k] = type(o[k])(v) if not isinstance(o[k], str) else str(v)
    return o


def run(out_dir, scenario="paper-a", quick: bool = False, **kw) -> list:
    """Train the unfolded DoA network and the unsupervised baseline for each K in ``Ks`` (comma list).

    Writes ``doa_unfolded_K{K}.pt``, ``doa_unsup_K{K}.pt``, ``train_doa.log`` and ``train_doa.json``
    (options, timings, test CRBs) to ``out_dir``. Options (``--set KEY=VALUE``): see TRAIN_DEFAULTS.
    """
    o = _parse(kw, quick)
    scn0 = load_scenario(scenario)
    if not isinstance(scn0, ScenarioA):
        raise ValueError("train doa: expected a paper-a scenario")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    logf = open(out / "train_doa.log", "a")

    def log(msg):
        line = f"[{time.strftime('%H:%M:%S')}] {msg}"
        print(line, file=sys.stderr)
        logf.write(line + "\n")
        logf.flush()

    torch.set_num_threads(1)
    cfg = DoaConfig(T=o["T"], J=o["J"], R=o["R"], dfp_variant=o["dfp_variant"], handler=o["handler"])
    tag = ("" if o["handler"] == "phr" else "_" + o["handler"]) + (f"_{o['kind']}" if o["kind"] else "")
    Ks = [int(k) for k in str(o["Ks"]).split(",")]
    K_max = max(4, max(Ks))
    hidden = tuple(int(h) for h in str(o["unsup_hidden"]).split(","))
    log(f"train doa: options {json.dumps(o)}; cfg {asdict(cfg)}")
    paths, summary = [], {"options": o, "cfg": asdict(cfg), "runs": {}}
    for K in Ks:
        scn = _with_K(scn0, K)
        t0 = time.time()
        chs, starts = make_dataset(scn, o["n_train"], o["seed"])
        log(f"K={K}: dataset of {len(chs)} realisations in {time.time() - t0:.1f}s")
        tchs, tst = make_dataset(scn, o["n_test"], o["seed"], offset=10 ** 6)
        tb = DoaBatch(scn, tchs, tst, cfg, "ris")
        res = {"start": tb.crb(tb.u0, tb.phi0).mean().item()}
        summary["runs"][str(K)] = res
        if o["unfolded"]:
            t1 = time.time()
            p = out / f"doa_unfolded{tag}_K{K}.pt"

            def _meta(nt, K=K, t1=t1):
                nt.meta.update({"train": {k: o[k] for k in ("n_train", "batch", "updates_per_layer", "lr", "omega",
                                                            "seed", "train_layers")},
                                "train_seconds": time.time() - t1, "K_train": K})

            def _save_so_far(nt, t, p=p):          # consistent weights after every layer (stoppable run)
                _meta(nt)
                nt.save(p)
            net = train_unfolded(scn, chs, starts, cfg, o["batch"], o["updates_per_layer"], o["lr"], o["omega"],
                                 o["seed"], log, o["train_layers"], _save_so_far if o["train_layers"] else None)
            tu = time.time() - t1
            _meta(net)
            net.save(p)
            paths.append(str(p))
            s_net = net.infer(tb)
            s_cls = run_classical(tb)
            res.update({"unfolded": tb.crb(s_net.x, s_net.phi).mean().item(),
                        "classical_same_cfg": tb.crb(s_cls.x, s_cls.phi).mean().item(),
                        "train_seconds_unfolded": tu})
        if o["unsup"]:
            if o["unsup_n_train"] > o["n_train"]:
                t0 = time.time()
                uchs, ust = make_dataset(scn, o["unsup_n_train"], o["seed"])
                log(f"K={K}: unsupervised dataset of {len(uchs)} realisations in {time.time() - t0:.1f}s")
            else:
                uchs, ust = chs, starts
            t2 = time.time()
            un = train_unsupervised(scn, uchs, ust, K_max, hidden, o["unsup_epochs"], o["batch"], o["unsup_lr"],
                                    o["unsup_omega"], o["seed"], log, o["unsup_omega_end"] or None,
                                    bool(o["unsup_residual"]))
            ts = time.time() - t2
            un.meta.update({"train": {k: o[k] for k in ("n_train", "unsup_n_train", "batch", "unsup_epochs",
                                                        "unsup_lr", "unsup_omega", "unsup_omega_end", "unsup_residual",
                                                        "seed")},
                            "train_seconds": ts, "K_train": K})
            p = out / f"doa_unsup_K{K}.pt"
            un.save(p)
            paths.append(str(p))
            un = UnsupervisedDoa.load(p)         # evaluate what is shipped (float16 on disk)
            X, P = un.design(scn, tchs, tst)
            u_, p_ = tb.prob.det.u_from_numpy(X), tb.prob.det.phi_from_numpy(P)
            res["unsupervised"] = tb.crb(u_, p_).mean().item()
            res["unsupervised_ci_rate_raw"] = float((tb.violation(u_, p_) <= 0).float().mean())
            Xr, _ = repair_ci(scn, tchs, X, P, tst)
            res["unsupervised_repaired"] = tb.crb(tb.prob.det.u_from_numpy(Xr), p_).mean().item()
            res["train_seconds_unsup"] = ts
        log(f"K={K}: test mean CRB {json.dumps(res)}")
    (out / "train_doa.json").write_text(json.dumps(summary, indent=1))
    paths += [str(out / "train_doa.log"), str(out / "train_doa.json")]
    logf.close()
    return paths


def _with_K(scn: ScenarioA, K: int) -> ScenarioA:
    """The scenario with K users (per-user lists resized with the first user's value)."""
    if K == scn.K:
        return scn
    return scn.replace(K=K, noise_comm_w=(scn.noise_comm_w[0],) * K, gamma_db=(scn.gamma_db[0],) * K)
