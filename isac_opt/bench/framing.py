"""Frame layout of the SLP sample stream and frame re-assembly by stream tags [spec D.8].

One frame = one radar pulse of paper A: the L designed slots x[0..L−1] (one slot = one complex sample
per antenna, no pulse shaping [spec D.8]) followed by ``gap`` zero samples (the PRI guard), so a frame
holds ``F = L + gap`` samples. With ``gap ≥ max range bin`` every echo of pulse n ends inside frame n
and the streaming channel reproduces spec A.4's truncated model (x[l'] = 0 for l' < 0) exactly.

Tags (all on the first sample of a frame, offsets in items of the vector stream):

* ``frame``  — int frame index n ≥ 0; the source ends a finite run with one extra zero sample tagged
  ``frame = -1`` (end marker) so that the last frame can be validated.
* ``design`` — flat dict ``{"id", "path", "first_frame", "K", "M", "L", "F", "order", "sym"}`` on the first frame
  of every design (``sym``: uint8 PSK indices, row-major (K, L)).
* ``target`` — bool, added by the simulated channel: whether the target echo is present in this frame.

Re-synchronisation rule (:class:`FrameAssembler`): the frame starting at a ``frame`` tag at offset o is
accepted iff the next ``frame`` tag is at exactly o + F. A dropped or inserted sample therefore costs
exactly the one frame it falls into; the next tag re-synchronises.
"""
from __future__ import annotations

import hashlib

import numpy as np

FRAME_KEY = "frame"
DESIGN_KEY = "design"
TARGET_KEY = "target"
END_FRAME = -1


def auto_gap(scn) -> int:
    """Smallest guard that makes the streaming echo model exact: max(target bin, clutter bins)."""
    return int(max((scn.target_bin,) + tuple(scn.clutter_bins)))


def frontend_scale(backend: str, amp: float, peak: float = 0.5) -> float:
    """Amplitude scale of the SLP source for a front end: 1 for ``sim`` (physical units, the channel
    divides the scale out), ``peak / amp`` for ``pluto``/``uhd`` (float ±1.0 = DAC full scale; the
    constant-modulus samples of amplitude ``amp`` = sqrt(P/M) then sit at ``peak`` of full scale)."""
    if backend == "sim":
        return 1.0
    if backend in ("pluto", "uhd"):
        if not amp > 0:
            raise ValueError(f"amp: expected > 0, got {amp}")
        return float(peak) / float(amp)
    raise ValueError(f"backend: expected 'sim', 'pluto' or 'uhd', got {backend!r}")


def frame_samples(X, gap: int, scale: float = 1.0) -> np.ndarray:
    """Samples of one frame: X (M, L) slots then ``gap`` zeros, times ``scale``; complex64 (L+gap, M)."""
    X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(f"X: expected a (M, L) array, got shape {X.shape}")
    if int(gap) < 0:
        raise ValueError(f"gap: expected an integer >= 0, got {gap}")
    out = np.zeros((X.shape[1] + int(gap), X.shape[0]), dtype=np.complex64)
    out[:X.shape[1]] = (scale * X.T).astype(np.complex64)
    return out


def symbol_indices(S, order: int) -> np.ndarray:
    """PSK indices i of s = e^{j(π/Ω + 2πi/Ω)} [spec A.1]; uint8, same shape as S."""
    ang = np.mod(np.angle(np.asarray(S)) - np.pi / order, 2 * np.pi)
    return (np.rint(ang / (2 * np.pi / order)).astype(np.int64) % order).astype(np.uint8)


def symbols_from_indices(idx, order: int) -> np.ndarray:
    """Inverse of :func:`symbol_indices`; complex128."""
    i = np.asarray(idx, dtype=np.int64)
    return np.exp(1j * (np.pi / order + 2 * np.pi * i / order))


def design_id(X, phi) -> str:
    """Short content id of a design (SHA-256 of X and φ, 12 hex digits)."""
    h = hashlib.sha256(np.ascontiguousarray(X, dtype=np.complex128).tobytes())
    h.update(np.ascontiguousarray(phi, dtype=np.complex128).tobytes())
    return h.hexdigest()[:12]


def design_tag(design, path: str, first_frame: int, frame_len: int) -> dict:
    """The ``design`` tag dict of a paper-A design (see module docstring)."""
    scn = design.scenario
    return {"id": design_id(design.X, design.phi), "path": str(path), "first_frame": int(first_frame),
            "K": int(scn.K), "M": int(scn.M), "L": int(scn.L), "F": int(frame_len), "order": int(scn.psk_order),
            "sym": symbol_indices(design.channels.S, scn.psk_order).reshape(-1)}


class FrameAssembler:
    """Cut a vector stream into frames at ``frame`` tags (vectorised, keeps state across calls).

    Parameters
    ----------
    frame_len : int
        F, samples per frame.
    n_ch : int
        Channels per sample (the vector length).
    keep : int
        Samples of each frame that are returned (default F).
    """

    def __init__(self, frame_len: int, n_ch: int, keep: int | None = None, dtype=np.complex64):
        if int(frame_len) < 1:
            raise ValueError(f"frame_len: expected >= 1, got {frame_len}")
        self.F = int(frame_len)
        self.keep = self.F if keep is None else int(keep)
        if not 1 <= self.keep <= self.F:
            raise ValueError(f"keep: expected 1..{self.F}, got {keep}")
        self._buf = np.zeros((0, int(n_ch)), dtype=dtype)
        self._base = 0                      # absolute offset of _buf[0]
        self._offs = np.zeros(0, np.int64)  # pending frame tags (absolute offsets)
        self._vals = np.zeros(0, np.int64)
        self.dropped = 0                    # frames rejected by the re-sync rule

    def push(self, data, offset0: int, tag_offsets=(), tag_values=()):
        """Add samples ``data`` (n, C) starting at absolute offset ``offset0`` and their frame tags.

        Returns ``(frames, values, starts)``: complex (nf, keep, C), the frame indices (nf,) int64 and
        the absolute start offsets (nf,) of the frames completed and accepted by this call.
        """
        data = np.asarray(data)
        if self._buf.shape[0] == 0:
            self._base = int(offset0)
        elif int(offset0) != self._base + self._buf.shape[0]:
            raise ValueError(f"offset0: expected {self._base + self._buf.shape[0]} (contiguous), got {offset0}")
        self._buf = np.concatenate([self._buf, data.astype(self._buf.dtype, copy=False)]) \
            if self._buf.shape[0] else data.astype(self._buf.dtype, copy=True)
        if len(tag_offsets):
            self._offs = np.concatenate([self._offs, np.asarray(tag_offsets, np.int64)])
            self._vals = np.concatenate([self._vals, np.asarray(tag_values, np.int64)])
        n_t = self._offs.size
        empty = (np.zeros((0, self.keep, self._buf.shape[1]), self._buf.dtype), np.zeros(0, np.int64),
                 np.zeros(0, np.int64))
        if n_t == 0:
            self._buf = self._buf[:0]
            return empty
        # every tag but the last has a successor: decide it now
        good = np.diff(self._offs) == self.F
        good &= self._vals[:-1] >= 0
        self.dropped += int(np.count_nonzero(~good & (self._vals[:-1] >= 0)))
        starts = self._offs[:-1][good]
        vals = self._vals[:-1][good]
        if starts.size:
            idx = (starts - self._base)[:, None] + np.arange(self.keep)[None, :]
            frames = self._buf[idx]
        else:
            frames = empty[0]
        # keep only the data from the last (undecided) tag on
        last = int(self._offs[-1])
        cut = max(0, last - self._base)
        self._buf = self._buf[cut:]
        self._base += cut
        self._offs, self._vals = self._offs[-1:], self._vals[-1:]
        return frames, vals, starts


def latest_design(designs: list, frame_index):
    """For each frame index, the position in ``designs`` (sorted by ``first_frame``) that governs it.

    ``designs`` is a list of design-tag dicts; returns int64 array (−1 where none applies yet).
    """
    if not designs:
        return np.full(np.shape(frame_index), -1, np.int64)
    firsts = np.array([d["first_frame"] for d in designs], np.int64)
    return np.searchsorted(firsts, np.asarray(frame_index, np.int64), side="right").astype(np.int64) - 1


class DesignTrack:
    """Which design governs which frame: design tags in arrival order, looked up by frame index.

    Designs are loaded lazily from the tag's ``path`` (cached by id) with ``loader`` (default
    :func:`isac_opt.designfile.load_design`), or pre-registered with :meth:`preload`.
    """

    def __init__(self, loader=None):
        self.tags: list[dict] = []
        self._cache: dict[str, object] = {}
        self._loader = loader

    def preload(self, design, path: str = "") -> dict:
        tag = design_tag(design, path, 0, design.scenario.L + auto_gap(design.scenario))
        self._cache[tag["id"]] = design
        return tag

    def add(self, tag: dict) -> None:
        tag = dict(tag)
        if self.tags and tag["first_frame"] < self.tags[-1]["first_frame"]:
            self.tags = [t for t in self.tags if t["first_frame"] < tag["first_frame"]]
        self.tags.append(tag)

    def lookup(self, frame_index) -> np.ndarray:
        return latest_design(self.tags, frame_index)

    def design(self, pos: int):
        tag = self.tags[pos]
        d = self._cache.get(tag["id"])
        if d is None:
            if self._loader is None:
                from ..designfile import load_design
                self._loader = load_design
            d = self._loader(tag["path"])
            self._cache[tag["id"]] = d
        return d
