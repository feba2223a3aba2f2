"""ZMQ front end: one :class:`RisServer` owns the device (serial port), many :class:`ZmqRis` clients.

Commands travel over REQ/REP as JSON (bench notes 4.3)::

    request  {"seq": 7, "op": "apply", "phase": [0, 1, ...], "amp": []}
    reply    {"seq": 7, "ok": true, "result": {"phase": [...], "amp": [...], "t_ack": ..., "attempts": 1, ...}}
    error    {"seq": 7, "ok": false, "error": {"type": "RisTimeout", "message": "..."}}

``op`` is one of ``board``, ``info``, ``apply``, ``read_back``, ``health``, ``reset``, ``ping``.
The server **always** replies (an error reply for unparseable or failing requests), so a REP socket is
never left waiting. Every applied state is published on PUB as the multipart message
``[b"ris.applied", json]`` with ``{"name", "phase", "amp", "t_ack", "attempts", "cycles", "count"}``
(``t_ack`` is the server host's ``time.monotonic()``). PUB/SUB drops messages sent before a subscriber
joined (slow joiner): use it for telemetry only.

**Security.** With ``secret_key`` (a CurveZMQ certificate, ``isac-testbed ris keygen``) and ``allow_dir``
(a directory of the authorised clients' public ``.key`` files) every socket of the server is a CURVE
server and pyzmq's own ZAP authenticator (:mod:`zmq.auth`) admits only the listed clients: traffic is
encrypted and a client without an allowed key never gets a reply. Without keys the server binds only
loopback (or ipc://) addresses and refuses anything else unless ``insecure=True``. Every socket has a
maximum message size (``max_msg_bytes``, ZMQ_MAXMSGSIZE): a larger request drops the sender's
connection before the server buffers it. Clients pass ``server_key`` (the server's public key file) and
``client_key`` (their own secret key file), e.g. ``zmq://host:5555?server_key=server.key&client_key=me.key_secret``.

The client is a *lazy pirate*: ``LINGER=0`` and ``RCVTIMEO`` on a REQ socket; after a timeout the socket
is closed and re-created (a REQ socket cannot send twice), at most ``retries`` times, then
:class:`RisTimeout`. Replies must carry the request's ``seq``; others are discarded.
"""
from __future__ import annotations

import json
import logging
import threading
import time

import zmq

from .device import Ack, BoardSpec, Health, LinkStats, Pattern, RisInfo, status_table
from .errors import ERROR_TYPES, RisError, RisInputError, RisProtocolError, RisTimeout, RisVerifyError

log = logging.getLogger(__name__)

__all__ = ["RisServer", "ZmqRis", "APPLIED_TOPIC", "MAX_MSG_BYTES", "is_loopback", "generate_keys"]

APPLIED_TOPIC = b"ris.applied"
MAX_MSG_BYTES = 256 * 1024      # a 4096-element apply is ~25 kB of JSON; refuse anything far larger


def is_loopback(addr: str) -> bool:
    """True for ipc://, inproc:// and tcp:// addresses on 127.0.0.0/8, ::1 or localhost."""
    a = _bind_addr(addr)
    if a.startswith(("ipc://", "inproc://")):
        return True
    host = a.partition("://")[2].rpartition(":")[0].strip("[]")
    if ";" in host:                 # "source;dest" connect syntax: judge the local interface
        host = host.split(";")[0]
    return host == "localhost" or host == "::1" or host.startswith("127.")


def generate_keys(directory, name: str) -> tuple[str, str]:
    """Write a CurveZMQ key pair ``NAME.key`` (public, to share) and ``NAME.key_secret`` (keep private)
    into ``directory`` (pyzmq's certificate format); returns their paths."""
    import os
    import zmq.auth
    os.makedirs(directory, exist_ok=True)
    pub, sec = zmq.auth.create_certificates(str(directory), name)
    os.chmod(sec, 0o600)
    return pub, sec


def _load_keys(path, *, secret: bool, what: str) -> tuple[bytes, bytes | None]:
    import zmq.auth
    try:
        pub, sec = zmq.auth.load_certificate(str(path))
    except (OSError, ValueError) as e:
        raise RisError(f"{what} {path}: not a CurveZMQ certificate ({e})") from None
    if secret and sec is None:
        raise RisError(f"{what} {path}: expected a secret key file (NAME.key_secret), got a public one")
    return pub, sec


def _pattern_from(d: dict, board: BoardSpec) -> Pattern:
    try:
        return Pattern(tuple(d["phase"]), tuple(d.get("amp", ()))).validate(board)
    except (KeyError, TypeError) as e:
        raise ValueError(f"request field 'phase'/'amp': expected integer lists ({e})") from None


class RisServer:
    """Serve one device over REP (commands) and PUB (applied states).

    Parameters
    ----------
    device : RisDevice
        The device it owns (e.g. ``open_ris("serial:///dev/ttyUSB0")``); closed by :meth:`close`
        only when ``own_device``.
    rep : str
        Bind address of the REP socket, e.g. ``"tcp://127.0.0.1:5555"`` (port 0: pick a free one and
        read it back from :attr:`rep_endpoint`).
    pub : str or None
        Bind address of the PUB socket (None: no publishing).
    secret_key : path or None
        The server's CurveZMQ secret key file (``NAME.key_secret``); turns on CURVE + the allow-list.
    allow_dir : path or None
        Directory of the authorised clients' public key files (required with ``secret_key``).
    insecure : bool
        Allow binding a non-loopback address without keys (anyone who reaches the port controls the RIS).
    max_msg_bytes : int
        ZMQ_MAXMSGSIZE of every socket [bytes].
    """

    def __init__(self, device, rep: str = "tcp://127.0.0.1:5555", pub: str | None = None, *,
                 own_device: bool = False, name: str = "ris", context: zmq.Context | None = None,
                 secret_key=None, allow_dir=None, insecure: bool = False, max_msg_bytes: int = MAX_MSG_BYTES):
        self.device = device
        self.name = name
        self.own_device = own_device
        self._auth = None
        self._own_ctx = None
        self._pub = None
        if not isinstance(max_msg_bytes, int) or isinstance(max_msg_bytes, bool) or max_msg_bytes < 1024:
            raise RisInputError(f"max_msg_bytes: expected an integer >= 1024, got {max_msg_bytes!r}")
        self.max_msg_bytes = max_msg_bytes
        keys = self.check_security(rep, pub, secret_key=secret_key, allow_dir=allow_dir, insecure=insecure)
        self.secure = keys is not None
        if self.secure:
            # ZAP is per context: a private one keeps this server's allow-list from touching other sockets
            from zmq.auth.thread import ThreadAuthenticator
            self._own_ctx = self._ctx = zmq.Context()
            self._auth = ThreadAuthenticator(self._ctx, log=log)
            self._auth.start()
            self._auth.configure_curve(domain="*", location=str(allow_dir))
        else:
            self._ctx = context or zmq.Context.instance()
        self._rep = self._socket(zmq.REP, keys)
        try:
            self._rep.bind(_bind_addr(rep))
            self.rep_endpoint = self._rep.getsockopt(zmq.LAST_ENDPOINT).decode()
            if pub:
                self._pub = self._socket(zmq.PUB, keys)
                self._pub.bind(_bind_addr(pub))
                self.pub_endpoint = self._pub.getsockopt(zmq.LAST_ENDPOINT).decode()
            else:
                self.pub_endpoint = None
        except zmq.ZMQError as e:
            self._close_sockets()
            self._close_auth()
            raise RisError(f"cannot bind RIS server on {rep!r}/{pub!r}: {e}") from e
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.requests = 0
        self.errors = 0
        self.published = 0
        self._closed = False

    @staticmethod
    def check_security(rep: str, pub: str | None, *, secret_key=None, allow_dir=None, insecure: bool = False,
                       **_) -> tuple[bytes, bytes] | None:
        """Check the security settings (see the class docstring) before anything is opened.

        Returns the server's CURVE (public, secret) keys, or None for a plain server. Raises
        :class:`RisError` for a non-loopback address without keys (unless ``insecure``), keys without
        an allow-list, or unreadable key files.
        """
        keys = None
        if secret_key is None:
            if allow_dir is not None:
                raise RisError("RIS server: an allow-list (--allow) needs the server's key (--keys)")
            exposed = [a for a in (rep, pub) if a and not is_loopback(a)]
            if exposed and not insecure:
                raise RisError(f"RIS server: refusing to bind {exposed[0]!r} (not loopback) without CurveZMQ "
                               f"keys; pass --keys SERVER.key_secret --allow CLIENT_KEYS_DIR (see "
                               f"docs/bench_guide.md), or --insecure to let anyone who reaches it drive the RIS")
        else:
            keys = _load_keys(secret_key, secret=True, what="server key")
            if allow_dir is None:
                raise RisError("RIS server: --keys needs --allow DIR (the authorised clients' public keys)")
            from pathlib import Path
            if not Path(allow_dir).is_dir() or not any(Path(allow_dir).glob("*.key")):
                raise RisError(f"RIS server: allow-list {allow_dir}: expected a directory holding clients' "
                               f"public NAME.key files")
        return keys

    def _socket(self, kind, keys):
        s = self._ctx.socket(kind)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.MAXMSGSIZE, self.max_msg_bytes)
        if keys is not None:
            s.curve_publickey, s.curve_secretkey = keys
            s.curve_server = True
        return s

    def _close_auth(self) -> None:
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._own_ctx is not None:
            self._own_ctx.term()
            self._own_ctx = None

    # -- request handling --------------------------------------------------------------------------
    def handle(self, raw: bytes) -> dict:
        """Reply dict for one raw request (never raises)."""
        seq = None
        try:
            try:
                req = json.loads(raw)
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                raise RisProtocolError(f"request is not JSON: {e}") from None
            if not isinstance(req, dict):
                raise RisProtocolError("request: expected a JSON object")
            seq = req.get("seq")
            op = req.get("op")
            dev = self.device
            if op == "ping":
                result = {"t": time.monotonic()}
            elif op == "board":
                result = dev.board.to_dict(with_gamma=True)
            elif op == "info":
                i = dev.info()
                result = {"firmware": i.firmware, "serial": i.serial, "protocol": i.protocol,
                          "last": i.last.to_dict() if i.last else None}
            elif op == "apply":
                p = _pattern_from(req, dev.board)
                ack = dev.apply(p)
                result = ack.to_dict()
                self._publish(ack)
            elif op == "read_back":
                p = dev.read_back()
                result = {"phase": list(p.phase), "amp": list(p.amp)}
            elif op == "health":
                result = dev.health().to_dict()
            elif op == "reset":
                dev.reset()
                result = {}
            else:
                raise RisProtocolError(f"request field 'op': expected one of board/info/apply/read_back/"
                                       f"health/reset/ping, got {op!r}")
            return {"seq": seq, "ok": True, "result": result}
        except Exception as e:      # the server must always answer: every failure becomes an error reply
            self.errors += 1
            kind = type(e).__name__ if type(e).__name__ in ERROR_TYPES else \
                ("ValueError" if isinstance(e, (ValueError, TypeError)) else "RisError")
            return {"seq": seq, "ok": False, "error": {"type": kind, "message": str(e)}}

    def _publish(self, ack: Ack) -> None:
        if self._pub is None:
            return
        msg = dict(name=self.name, count=self.published + 1, **ack.to_dict())
        try:
            self._pub.send_multipart([APPLIED_TOPIC, json.dumps(msg).encode()], flags=zmq.NOBLOCK)
            self.published += 1
        except zmq.Again:
            pass

    # -- loop --------------------------------------------------------------------------------------
    def serve_forever(self, poll_ms: int = 50) -> None:
        """Answer requests until :meth:`stop` (or ``KeyboardInterrupt``)."""
        poller = zmq.Poller()
        poller.register(self._rep, zmq.POLLIN)
        while not self._stop.is_set():
            if not poller.poll(poll_ms):
                continue
            raw = self._rep.recv()
            self.requests += 1
            rep = self.handle(raw)
            self._rep.send(json.dumps(rep).encode())

    def start(self) -> "RisServer":
        """Serve in a background thread; returns self."""
        self._thread = threading.Thread(target=self.serve_forever, name=f"ris-server-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
            self._thread = None

    def _close_sockets(self) -> None:
        for s in (self._rep, self._pub):
            if s is not None:
                s.close(linger=0)

    def close(self) -> None:
        """Stop, join, close sockets (and the device when ``own_device``). Idempotent."""
        if self._closed:
            return
        self._closed = True
        self.stop()
        self._close_sockets()
        self._close_auth()
        if self.own_device:
            self.device.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _bind_addr(addr: str) -> str:
    return addr.replace("zmq://", "tcp://", 1) if addr.startswith("zmq://") else addr


class ZmqRis:
    """Lazy-pirate REQ client of a :class:`RisServer` (``open_ris("zmq://host:port")``).

    Parameters
    ----------
    endpoint : str
        ``tcp://host:port`` of the server's REP socket.
    timeout_s : float
        Receive timeout per attempt [s]; must exceed the server's worst-case apply time.
    retries : int
        Socket re-creations after a timeout before :class:`RisTimeout`.
    server_key, client_key : path or None
        CurveZMQ: the server's public key file and this client's secret key file (both or neither).
    """

    protocol = "zmq"

    def __init__(self, endpoint: str, *, timeout_s: float = 5.0, retries: int = 2,
                 context: zmq.Context | None = None, server_key=None, client_key=None):
        if (server_key is None) != (client_key is None):
            raise RisInputError("zmq: CurveZMQ needs both server_key (the server's public .key file) and "
                             "client_key (this client's .key_secret file)")
        self._curve = None
        if server_key is not None:
            spub, _ = _load_keys(server_key, secret=False, what="server_key")
            cpub, csec = _load_keys(client_key, secret=True, what="client_key")
            self._curve = (spub, cpub, csec)
        self.endpoint = _bind_addr(endpoint)
        self.url = endpoint
        self.timeout_s = float(timeout_s)
        self.retries = int(retries)
        self._ctx = context or zmq.Context.instance()
        self._sock = None
        self._lock = threading.Lock()
        self._seq = 0
        self._closed = False
        self.stats = LinkStats()
        self.last: Ack | None = None
        self.board = BoardSpec.from_dict(self._call("board"))
        i = self._call("info")
        self.firmware, self.serial, self.remote_protocol = i["firmware"], i["serial"], i["protocol"]

    def _socket(self):
        if self._sock is None:
            s = self._ctx.socket(zmq.REQ)
            s.setsockopt(zmq.LINGER, 0)
            s.setsockopt(zmq.RCVTIMEO, int(self.timeout_s * 1000))
            s.setsockopt(zmq.SNDTIMEO, int(self.timeout_s * 1000))
            if self._curve is not None:
                s.curve_serverkey, s.curve_publickey, s.curve_secretkey = self._curve
            s.connect(self.endpoint)
            self._sock = s
        return self._sock

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def _call(self, op: str, **kw) -> dict:
        if self._closed:
            raise RisError(f"{self.url}: client is closed")
        with self._lock:
            self.stats.transactions += 1
            for attempt in range(self.retries + 1):
                if attempt:
                    self.stats.retries += 1
                self._seq += 1
                seq = self._seq
                sock = self._socket()
                try:
                    sock.send(json.dumps(dict(seq=seq, op=op, **kw)).encode())
                    rep = json.loads(sock.recv())
                except zmq.Again:
                    self.stats.timeouts += 1
                    self._drop_socket()                  # lazy pirate: a REQ socket cannot resend
                    continue
                except (json.JSONDecodeError, UnicodeDecodeError):
                    self.stats.bad_frames += 1
                    self._drop_socket()
                    continue
                if not isinstance(rep, dict) or rep.get("seq") != seq:
                    self.stats.stale_replies += 1
                    self._drop_socket()
                    continue
                if rep.get("ok"):
                    return rep["result"]
                err = rep.get("error") or {}
                kind, msg = err.get("type", "RisError"), err.get("message", "")
                if kind == "ValueError":
                    raise RisInputError(f"server: {msg}")
                raise ERROR_TYPES.get(kind, RisError)(f"server: {msg}")
            raise RisTimeout(f"{self.url}: no reply to {op} after {self.retries + 1} attempt(s) of "
                             f"{self.timeout_s:.3f} s")

    def apply(self, pattern: Pattern, *, timeout_s: float | None = None) -> Ack:
        pattern.validate(self.board)
        d = self._call("apply", phase=list(pattern.phase), amp=list(pattern.amp))
        ack = Ack.from_dict(d)
        if ack.pattern != pattern:       # the server verified; check that it verified *our* pattern
            from .patterndiff import pattern_diff
            raise RisVerifyError(f"{self.url}: server confirmed another pattern: {pattern_diff(ack.pattern, pattern)}")
        self.stats.applies += 1
        self.last = ack
        return ack

    def read_back(self) -> Pattern:
        d = self._call("read_back")
        return Pattern(tuple(d["phase"]), tuple(d["amp"])).validate(self.board)

    def info(self) -> RisInfo:
        return RisInfo(self.board, self.firmware, self.serial, f"zmq/{self.remote_protocol}", self.last)

    def health(self) -> Health:
        return Health(**self._call("health"))

    def reset(self) -> None:
        self._call("reset")
        self.last = None

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            with self._lock:
                self._drop_socket()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return status_table(f"ZmqRis({self.url!r})", self.board, self.firmware, self.serial, self.last, self.stats)
