"""Helpers of ris_control (not a block): turn a command into continuous RIS coefficients."""
from __future__ import annotations

import numpy as np
from isac_opt.errors import ConfigError


def coefficients_for_command(cmd, n: int) -> np.ndarray:
    """Continuous coefficients (n,) for a command: design path, or dict with path / phi / coefficients / random."""
    if isinstance(cmd, (str, bytes)):
        cmd = {"path": cmd.decode() if isinstance(cmd, bytes) else cmd}
    if not isinstance(cmd, dict):
        raise ConfigError(f"command: expected a design path or a dict, got {type(cmd).__name__}")
    if "path" in cmd:
        from isac_opt.designfile import load_design
        phi = load_design(cmd["path"]).phi
    elif "phi" in cmd or "coefficients" in cmd:
        phi = np.asarray(cmd.get("phi", cmd.get("coefficients")), np.complex128).reshape(-1)
    elif "random" in cmd:
        rng = np.random.default_rng(int(cmd["random"]))
        phi = np.exp(2j * np.pi * rng.uniform(size=n))
    else:
        raise ConfigError(f"command: expected one of path, phi, coefficients, random, phase; got keys {sorted(cmd)}")
    if phi.shape != (n,):
        raise ConfigError(f"command: the RIS has {n} elements but the command gives {phi.size} coefficients")
    return phi
