"""Layer-by-layer training of the detection network [spec A.6 "Training", A.12].

``isac-testbed train detect --scenario paper-a --out DIR [--quick] [--set KEY=VALUE ...]``

Options (``--set``; defaults in brackets): ``T`` [20], ``J`` [2], ``R`` [5], ``dfp`` ["identity"],
``handler`` ["alm"], ``n_train`` [800], ``n_test`` [200], ``epochs`` [5] per layer, ``batch`` [32],
``lr`` [5e-3] (Adam), ``omega`` [0.1] (CI-violation penalty weight, 0 = A's pure SINR loss), ``seed`` [0],
``workers`` [1] (processes for the A.10 start points), ``dtype`` ["float64"; "float32" halves the CPU cost],
``train_layers`` [0 = all T]: train only the first n layers layer-wise; the others keep their initial
parameters (= the classical constant steps) and the weights metadata records ``layers_trained``,
``kind`` [""]: weights file ``detect_<scenario>[_<kind>].pt`` (e.g. ``kind=paper`` for the 75/8/10 DFP net).
The weights file is (re)written after every trained layer, so a run stopped early leaves consistent
weights whose metadata says how many layers were trained.
``--quick``: T=2, J=1, R=2, N=16, 16 training / 8 test samples, 1 epoch (a smoke test, seconds).

Procedure [RECON]: for t = 1..T, layers < t are frozen (their outputs cached without gradients) and layer
t's MLPs are trained with Adam on ℓ = mean_b[−SINR_b/SINR_b⁰ + ω·mean_{k,l} max(g_{k,l}/γ_k, 0)].
Data: realisations ``realisation_rng(seed, i)`` for training and ``realisation_rng(seed + 1, i)`` for
test, with their A.10 start points (cached in DIR/starts.npz: plain arrays read with ``allow_pickle=False``,
keyed by the scenario, seed and sample counts; a pickle cache of older versions is never read).
Outputs in DIR: ``detect_<scenario>.pt`` (weights), ``ckpt.pt`` (resumable after every layer),
``train_log.csv``, ``loss.png``, ``command.txt``.
"""
from __future__ import annotations

import csv
import json
import os
import shlex
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from ..scenario import ScenarioA
from ...scenario import load_scenario
from ...errors import IsacError
from ..unfold import AdmmConfig, CIConstraint, SinrObjective, UnfoldedAdmm
from .core import Batch, draw_starts, make_batch
from ..unfold import repair_ci
from .unfolded import DEFAULT_INIT, save_net

DEFAULTS = dict(T=20, J=2, R=5, dfp="identity", handler="alm", n_train=800, n_test=200, epochs=5, batch=32,
                lr=5e-3, omega=0.1, seed=0, workers=1, dtype="float64", train_layers=0, kind="")
QUICK = dict(T=2, J=1, R=2, n_train=16, n_test=8, epochs=1, batch=8)


def _starts(scn, seed, n, workers):
    chunks = [range(i, min(i + 25, n)) for i in range(0, n, 25)]
    if workers > 1:
        from joblib import Parallel, delayed
        res = Parallel(n_jobs=workers)(delayed(draw_starts)(scn, seed, c, "ris") for c in chunks)
    else:
        from tqdm import tqdm
        res = [draw_starts(scn, seed, c, "ris") for c in tqdm(chunks, desc="A.10 start points", unit="chunk")]
    return [s for r in res for s in r]


# ------------------------------------------------------------------------- start-point cache (no pickle)
_START_FIELDS = ("X0", "phi0", "t_star")


def _starts_key(scn, o) -> dict:
    return {"scenario": scn.to_dict(), "seed": int(o["seed"]), "n_train": int(o["n_train"]),
            "n_test": int(o["n_test"]), "variant": "ris"}


def _save_starts(path: Path, key: dict, tr_s: list, te_s: list) -> None:
    """Write the start points as plain numeric arrays (stacked per field) + a JSON key; atomic."""
    from ..channels import CHANNEL_FIELDS
    arrays = {"key": np.array(json.dumps(key, sort_keys=True))}
    for tag, starts in (("tr", tr_s), ("te", te_s)):
        for f in CHANNEL_FIELDS:
            arrays[f"{tag}_{f}"] = np.stack([getattr(s.channels, f) for s in starts])
        for f in _START_FIELDS:
            arrays[f"{tag}_{f}"] = np.asarray([getattr(s, f) for s in starts])
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, **arrays)
    tmp.replace(path)


def _load_starts(path: Path, scn, key: dict):
    """Read a cache written by :func:`_save_starts`; None when it belongs to another run (different key).

    Never unpickles: ``allow_pickle=False`` makes an object array a ValueError. Damaged or foreign
    files raise :class:`IsacError` naming the file.
    """
    from ..channels import CHANNEL_FIELDS, ChannelsA
    from .core import Start
    try:
        with np.load(path, allow_pickle=False) as z:
            if json.loads(str(z["key"])) != json.loads(json.dumps(key, sort_keys=True)):
                return None
            out = []
            for tag, n in (("tr", key["n_train"]), ("te", key["n_test"])):
                a = {k: np.asarray(z[f"{tag}_{k}"]) for k in (*CHANNEL_FIELDS, *_START_FIELDS)}
                want = {**{k: (n, *f(scn)) for k, f in CHANNEL_FIELDS.items()},
                        "X0": (n, scn.M, scn.L), "phi0": (n, scn.N), "t_star": (n,)}
                for k, shp in want.items():
                    if a[k].shape != shp or not np.issubdtype(a[k].dtype, np.number):
                        raise ValueError(f"array '{tag}_{k}' has shape {a[k].shape} {a[k].dtype}, expected {shp}")
                out.append([Start(ChannelsA(**{k: a[k][i].astype(np.complex128) for k in CHANNEL_FIELDS}).check(scn),
                                  a["X0"][i].astype(np.complex128), a["phi0"][i].astype(np.complex128),
                                  float(a["t_star"][i])) for i in range(n)])
    except (OSError, ValueError, KeyError, EOFError, json.JSONDecodeError, zipfile.BadZipFile) as e:
        raise IsacError(f"{path}: not a start-point cache of this software ({type(e).__name__}: {e}); "
                        f"delete it or use a new --out") from None
    return out


def _cached_starts(out: Path, scn, o) -> tuple[list, list]:
    """A.10 start points of the training and test sets, from DIR/starts.npz when it matches this run."""
    legacy = out / "starts.pkl"
    if legacy.exists():      # older versions pickled the cache: never unpickle a file a user can plant
        print(f"train detect: ignoring {legacy} (pickle caches are not read; start points are recomputed "
              f"into starts.npz)", file=sys.stderr)
    cache = out / "starts.npz"
    key = _starts_key(scn, o)
    got = _load_starts(cache, scn, key) if cache.exists() else None
    if got is not None:
        return got[0], got[1]
    tr_s = _starts(scn, int(o["seed"]), int(o["n_train"]), int(o["workers"]))
    te_s = _starts(scn, int(o["seed"]) + 1, int(o["n_test"]), int(o["workers"]))
    _save_starts(cache, key, tr_s, te_s)
    return tr_s, te_s


def sub_batch(b: Batch, idx) -> tuple:
    p = b.problem.select(idx)
    return p, SinrObjective(p), (CIConstraint(p) if b.constraint is not None else None)


def layer_loss(prob, st, omega: float):
    """mean −SINR/SINR⁰ + ω·mean max(g/γ, 0) (g/γ = g̃/gscale)."""
    F = prob.sinr(st.x, st.phi)
    loss = -(F * prob.fscale).mean()
    if omega > 0:
        g = CIConstraint(prob).g(st.x, st.phi) / prob.gscale[:, None, None]
        loss = loss + omega * torch.clamp(g, min=0).mean()
    return loss


def _forward_all(net, b: Batch, st, layers, chunk=200):
    outs = []
    with torch.no_grad():
        for i in range(0, b.problem.batch, chunk):
            idx = torch.arange(i, min(i + chunk, b.problem.batch))
            p, o, c = sub_batch(b, idx)
            outs.append(net(st.select(idx), o, c, layers=layers))
    from ..unfold import AdmmState
    return AdmmState.cat(outs)


def evaluate(b: Batch, st) -> dict:
    with torch.no_grad():
        F = b.problem.sinr(st.x, st.phi)
        g = b.constraint.g(st.x, st.phi) / b.problem.gscale[:, None, None]
        xr, al = repair_ci(b.constraint, st.x, st.phi, b.state0.x)
        Fr = b.problem.sinr(xr, st.phi)
        gr = b.constraint.g(xr, st.phi)
    return {"sinr_db": float((10 * torch.log10(F)).mean()), "viol_frac": float((g > 0).float().mean()),
            "sinr_db_repaired": float((10 * torch.log10(Fr)).mean()),
            "viol_frac_repaired": float((gr > 0).float().mean())}


def _double_copy(net: UnfoldedAdmm) -> UnfoldedAdmm:
    """A float64 copy of ``net`` (the training net may be float32 and keeps training)."""
    import copy
    return copy.deepcopy(net).double()


def _write_log(out: Path, log_rows: list) -> None:
    keys = ["layer", "epoch", "train_loss", "test_sinr_db", "viol_frac", "sinr_db_repaired", "elapsed_s"]
    with open(out / "train_log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys, extrasaction="ignore")
        w.writeheader()
        for r in log_rows:
            w.writerow(r)


def train(out_dir, scenario="paper-a", quick: bool = False, **opts) -> list:
    """Train the detection network layer by layer; returns the written paths."""
    from tqdm import tqdm
    o = dict(DEFAULTS)
    if quick:
        o.update(QUICK)
    unknown = sorted(set(opts) - set(DEFAULTS))
    if unknown:
        raise IsacError(f"train detect: unknown option {unknown[0]!r}; expected one of {', '.join(DEFAULTS)}")
    o.update(opts)
    scn = load_scenario(scenario)
    if not isinstance(scn, ScenarioA):
        raise IsacError(f"train detect: expected a paper-a scenario, got kind {scn.kind!r}")
    if quick:
        scn = scn.replace(N=16)
    dtype = {"float64": torch.float64, "float32": torch.float32}.get(o["dtype"])
    if dtype is None:
        raise IsacError(f"train detect: dtype expected 'float64' or 'float32', got {o['dtype']!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    name = "paper-a" if scenario == "paper-a" else Path(str(scenario)).stem
    cmd = "isac-testbed train detect --scenario " + shlex.quote(str(scenario)) + " --out " + shlex.quote(str(out_dir)) \
        + (" --quick" if quick else "") + (" --set " + " ".join(f"{k}={v}" for k, v in opts.items()) if opts else "")
    (out / "command.txt").write_text(cmd + "\n" + "argv: " + " ".join(map(shlex.quote, sys.argv)) + "\n"
                                     + "options: " + json.dumps(o) + "\n")
    gen = torch.Generator().manual_seed(int(o["seed"]))
    tr_s, te_s = _cached_starts(out, scn, o)
    tr = make_batch(scn, tr_s, "ris", dtype=dtype)
    te = make_batch(scn, te_s, "ris", dtype=dtype)
    cfg = AdmmConfig(T=int(o["T"]), J=int(o["J"]), R=int(o["R"]), dfp_variant=o["dfp"], handler=o["handler"])
    net = UnfoldedAdmm(cfg, init=DEFAULT_INIT, seed=int(o["seed"])).to(dtype)
    ck = out / "ckpt.pt"
    t_done = 0
    log_rows = []
    if ck.exists():
        d = torch.load(ck, map_location="cpu", weights_only=True)
        net.load_state_dict(d["state_dict"])
        t_done = int(d["t_done"])
        log_rows = json.loads(d["log"])
    st_tr, st_te = tr.state0, te.state0
    if t_done:
        st_tr = _forward_all(net, tr, st_tr, range(t_done))
        st_te = _forward_all(net, te, st_te, range(t_done))
    n_lay = int(o["train_layers"]) or cfg.T
    if not 1 <= n_lay <= cfg.T:
        raise IsacError(f"train detect: train_layers expected 0..{cfg.T}, got {n_lay}")
    if not log_rows:
        base = _forward_all(net, te, te.state0, range(n_lay))           # untrained = classical solver, same depth
        e0 = evaluate(te, base)
        log_rows.append({"layer": 0, "epoch": 0, "train_loss": float("nan"), "test_sinr_db": e0["sinr_db"],
                         "test_sinr_db_untrained_full": e0["sinr_db"], "untrained_depth": n_lay,
                         "viol_frac": e0["viol_frac"], "sinr_db_repaired": e0["sinr_db_repaired"], "elapsed_s": 0.0})
    t_start = time.perf_counter()
    bs, n = int(o["batch"]), tr.problem.batch
    wpath = out / (f"detect_{name}" + (f"_{o['kind']}" if o["kind"] else "") + ".pt")

    def _save(layers_trained):
        info = {"command": cmd, "options": o, "test": evaluate(te, st_te), "layers_trained": layers_trained,
                "untrained_test_sinr_db": log_rows[0]["test_sinr_db"], "untrained_depth": n_lay,
                "train_seconds": time.perf_counter() - t_start}
        save_net(_double_copy(net), wpath, scn, info)
        return info

    for t in tqdm(range(t_done, n_lay), desc="layers", unit="layer", initial=t_done, total=n_lay):
        opt = torch.optim.Adam(net.layers[t].parameters(), lr=float(o["lr"]))
        for ep in range(int(o["epochs"])):
            perm = torch.randperm(n, generator=gen)
            losses = []
            for i in range(0, n, bs):
                idx = perm[i:i + bs]
                p, ob, c = sub_batch(tr, idx)
                st = net(st_tr.select(idx), ob, c, layers=[t])
                loss = layer_loss(p, st, float(o["omega"]))
                opt.zero_grad()
                loss.backward()
                opt.step()
                losses.append(loss.item())
            row = {"layer": t + 1, "epoch": ep + 1, "train_loss": float(np.mean(losses))}
            if ep == int(o["epochs"]) - 1:
                st_tr = _forward_all(net, tr, st_tr, [t])
                st_te = _forward_all(net, te, st_te, [t])
                ev = evaluate(te, st_te)
                row.update(test_sinr_db=ev["sinr_db"], viol_frac=ev["viol_frac"],
                           sinr_db_repaired=ev["sinr_db_repaired"])
            row["elapsed_s"] = time.perf_counter() - t_start
            log_rows.append(row)
        torch.save({"state_dict": net.state_dict(), "t_done": t + 1, "log": json.dumps(log_rows)}, ck)
        _save(t + 1)
        _write_log(out, log_rows)
    info = _save(n_lay)
    final = info["test"]
    _write_log(out, log_rows)
    paths = [wpath, out / "train_log.csv", out / "command.txt", ck]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
        tl = [r for r in log_rows if r["layer"] > 0]
        ax[0].plot(range(len(tl)), [r["train_loss"] for r in tl])
        ax[0].set_xlabel("epoch (all layers)")
        ax[0].set_ylabel("train loss")
        ev = [r for r in log_rows if "test_sinr_db" in r and r["layer"] > 0]
        ax[1].plot([r["layer"] for r in ev], [r["test_sinr_db"] for r in ev], "o-", label="trained (layers so far)")
        ax[1].axhline(log_rows[0]["test_sinr_db"], color="k", ls="--", label=f"untrained, {n_lay} layers")
        ax[1].set_xlabel("layer t")
        ax[1].set_ylabel("test SINR [dB]")
        ax[1].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "loss.png", dpi=100)
        plt.close(fig)
        paths.append(out / "loss.png")
    except Exception as e:  # plotting is optional
        print(f"loss plot skipped: {e}", file=sys.stderr)
    print(json.dumps({"untrained_test_sinr_db": log_rows[0]["test_sinr_db"], **final}))
    return paths


