"""``open_ris(url)``: one entry point for every RIS device.

=====================================================  =============================================
URL                                                    device
=====================================================  =============================================
``sim://NAME?n=64&bits=1&drop=0.01``                   in-process simulator, shared per NAME
                                                       (``ris_driver.sim.get_simulator(NAME)``)
``serial:///dev/ttyUSB0?baud=115200``                  ``ris1`` firmware over pyserial
``serial://loop://``, ``serial://socket://h:p``,       any ``serial.serial_for_url`` URL
``serial://spy:///dev/pts/3``, ``/dev/pts/3``
``osris+serial:///dev/ttyUSB0``                        OpenSourceRIS command set over pyserial
``zmq://127.0.0.1:5555``                               a ``RisServer`` (``isac-testbed ris serve``)
=====================================================  =============================================

A CurveZMQ server (``ris serve --keys ... --allow ...``) needs ``server_key`` (its public ``.key`` file)
and ``client_key`` (this client's ``.key_secret``): ``zmq://host:5555?server_key=S.key&client_key=C.key_secret``.

Common query parameters: ``timeout_ms`` (per attempt), ``retries``, ``verify`` (set/apply/verify
cycles), ``cal`` (calibration file, see ``BoardSpec.load``). Serial: ``baud``. Other query parameters
of a serial URL are passed on to pyserial (e.g. ``spy://...?file=log.txt``).
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from .device import BoardSpec
from .errors import RisInputError

__all__ = ["open_ris", "split_url"]

_OURS = {"baud", "timeout_ms", "retries", "verify", "cal"}


def split_url(url: str) -> tuple[str, str, dict]:
    """``(scheme, target, params)``; unknown parameters of serial URLs stay in ``target``."""
    if not isinstance(url, str) or not url:
        raise RisInputError(f"url: expected a device URL such as 'sim://bench' or 'serial:///dev/ttyUSB0', got {url!r}")
    if url.startswith("/"):
        url = "serial://" + url
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise RisInputError(f"url {url!r}: expected SCHEME://..., schemes sim, serial, osris+serial, zmq")
    target, _, query = rest.partition("?")
    params, other = {}, []
    for k, v in parse_qsl(query, keep_blank_values=True):
        if scheme in ("serial", "osris+serial") and k not in _OURS:
            other.append((k, v))
        else:
            params[k] = v
    if other:
        target += "?" + urlencode(other)
    return scheme, target, params


def _num(params: dict, key: str, conv, default, lo=None, hi=None, lo_open: bool = False):
    """Pop ``key`` as ``conv`` (int/float) within [lo, hi] (``lo_open``: > lo); NaN/inf are refused."""
    if key not in params:
        return default
    raw = params.pop(key)
    kind = "an integer" if conv is int else "a number"
    try:
        v = conv(raw)
    except ValueError:
        raise RisInputError(f"url parameter {key!r}: expected {kind}, got {raw!r}") from None
    if v != v or v in (float("inf"), float("-inf")) or (lo is not None and (v < lo or (lo_open and v == lo))) \
            or (hi is not None and v > hi):
        rng = f"{'>' if lo_open else '>='} {lo}" if hi is None else f"in {'(' if lo_open else '['}{lo}, {hi}]"
        raise RisInputError(f"url parameter {key!r}: expected {kind} {rng}, got {raw!r}")
    return v


def open_ris(url: str, *, board: BoardSpec | None = None):
    """Open the RIS device named by ``url`` (see module docstring); returns a ``RisDevice``."""
    scheme, target, p = split_url(url)
    if "cal" in p:
        board = BoardSpec.load(p.pop("cal"))
    timeout_s = _num(p, "timeout_ms", float, None, lo=0.0, hi=3.6e6, lo_open=True)
    timeout_s = None if timeout_s is None else timeout_s / 1000.0
    retries = _num(p, "retries", int, None, lo=0, hi=1000)
    verify = _num(p, "verify", int, None, lo=1, hi=1000)
    link_kw = {k: v for k, v in dict(timeout_s=timeout_s, retries=retries, verify_cycles=verify).items()
               if v is not None}
    if scheme == "sim":
        from .serial_link import OsrisRis, SerialRis
        from .sim import InProcTransport, get_or_create

        name = target or "default"
        from .sim import list_simulators, get_simulator
        geometry = {"n", "rows", "cols", "bits", "amps", "amp_scope", "protocol"} & set(p)
        if board is None and not geometry and name in list_simulators():
            board = get_simulator(name).board          # reuse the registered board as it is
            p["protocol"] = get_simulator(name).protocol
        protocol = p.pop("protocol", "ris1")
        if board is None:
            n = _num(p, "n", int, None, lo=1, hi=4096)
            rows = _num(p, "rows", int, None, lo=1, hi=4096)
            cols = _num(p, "cols", int, None, lo=1, hi=4096)
            if protocol == "osris" and n is None and rows is None:
                board = BoardSpec.open_source_ris()
            else:
                if rows is None and cols is None:
                    rows, cols = 1, (n if n is not None else 64)
                elif rows is None:
                    rows = (n or cols) // cols
                elif cols is None:
                    cols = (n or rows) // rows
                if n is not None and rows * cols != n:
                    raise RisInputError(f"url {url!r}: rows*cols = {rows * cols} differs from n = {n}")
                amps = _num(p, "amps", int, 1, lo=1, hi=256)
                scope = p.pop("amp_scope", "none" if amps == 1 else "element")
                board = BoardSpec(rows=rows, cols=cols, bits=_num(p, "bits", int, 1, lo=1, hi=16),
                                  amp_states=tuple(f"a{i}" for i in range(amps)) if amps > 1 else ("passive",),
                                  amp_scope=scope, name=name)
        for k in ("n", "rows", "cols", "bits", "amps", "amp_scope"):
            p.pop(k, None)
        seed = _num(p, "seed", int, 0, lo=0)
        # fault probabilities in [0, 1] and latency >= 0, checked before the shared board is touched
        faults = {k: _num(p, q, float, None, lo=0.0, hi=1.0)
                  for k, q in (("drop_ack", "drop"), ("corrupt", "corrupt"), ("silent_apply", "silent"))}
        lat = _num(p, "latency_ms", float, None, lo=0.0, hi=60_000.0)
        sb = get_or_create(name, board, protocol, seed)
        f = sb.faults
        for k, v in faults.items():
            if v is not None:
                setattr(f, k, v)
        if lat is not None:
            f.latency_s = lat / 1000.0
        _no_more(url, p)
        cls = OsrisRis if protocol == "osris" else SerialRis
        return cls(InProcTransport(sb), board=sb.board, url=url, **link_kw)
    if scheme in ("serial", "osris+serial"):
        from .serial_link import OsrisRis, SerialRis, SerialTransport

        baud = _num(p, "baud", int, 115200)
        _no_more(url, p)
        tr = SerialTransport(target, baudrate=baud)
        cls = OsrisRis if scheme == "osris+serial" else SerialRis
        return cls(tr, board=board, url=url, **link_kw)
    if scheme in ("zmq", "tcp"):
        from .zmq_link import ZmqRis

        kw = {}
        if timeout_s is not None:
            kw["timeout_s"] = timeout_s
        if retries is not None:
            kw["retries"] = retries
        if verify is not None:
            raise RisInputError("url parameter 'verify' does not apply to zmq:// (the server verifies)")
        for k in ("server_key", "client_key"):           # CurveZMQ key files (docs/bench_guide.md)
            if k in p:
                kw[k] = p.pop(k)
        _no_more(url, p)
        return ZmqRis("tcp://" + target, **kw)
    raise RisInputError(f"url {url!r}: unknown scheme {scheme!r}; expected sim, serial, osris+serial or zmq")


def _no_more(url: str, p: dict) -> None:
    if p:
        raise RisInputError(f"url {url!r}: unknown parameter(s) {sorted(p)}")


def simulator_from_url(url: str):
    """Create (or reuse) the board a ``sim://NAME?...`` URL describes, without keeping a client open.

    Lets a simulated channel get the shared board before (or without) any driver opening it.
    """
    from .sim import get_simulator

    scheme, name, _ = split_url(url)
    if scheme != "sim":
        raise RisInputError(f"url {url!r}: expected a sim://NAME?... URL")
    open_ris(url).close()
    return get_simulator(name or "default")
