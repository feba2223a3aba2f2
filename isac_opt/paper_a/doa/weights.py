"""Shipped DoA network weights: file names, paths and a cached loader (``isac_opt/weights/doa_*.pt``;
command lines and logs in ``doa_weights.md`` there)."""
from __future__ import annotations

from pathlib import Path

from .model import DoaNet, WeightsError

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "weights"
WEIGHTS = {"unfolded-doa": "doa_unfolded_K3.pt", "unfolded-doa-alm": "doa_unfolded_alm_K3.pt",
           "unfolded-doa-lite": "doa_unfolded_lite_K3.pt", "unsupervised-doa": "doa_unsup_K3.pt",
           "unfolded-doa-paper": "doa_unfolded_paper_K3.pt"}

_cache: dict = {}


def weights_path(method: str, K_train: int = 3) -> Path:
    name = WEIGHTS[method].replace("K3", f"K{K_train}")
    return WEIGHTS_DIR / name


def load_net(method: str, K_train: int = 3, path=None):
    """Load (cached) shipped weights of ``method`` trained with ``K_train`` users."""
    from .unsupervised import UnsupervisedDoa
    p = Path(path) if path is not None else weights_path(method, K_train)
    key = (method, str(p))
    if key not in _cache:
        if not p.is_file():
            raise WeightsError(f"{method}: weights file {p} is missing; train them with "
                               f"`isac-testbed train doa --out DIR` and copy doa_*.pt into {WEIGHTS_DIR}")
        _cache[key] = UnsupervisedDoa.load(p) if method == "unsupervised-doa" else DoaNet.load(p)
    return _cache[key]
