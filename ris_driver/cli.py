"""``isac-testbed ris ...`` / ``python -m ris_driver ...``: bench commands for RIS devices.

Sub-commands (each takes a device URL, see ``ris_driver.url``)::

    ris info URL                  identity, geometry, health, status table
    ris get URL                   read back the active pattern
    ris set URL --hex H | --states 0,1,.. | --zeros | --random [--seed S] | --coef FILE.npy [--amp A]
    ris sweep URL [--count K] [--kind random|single|walsh] [--period-ms T] [--json-out F]
    ris serve URL [--rep tcp://127.0.0.1:5555] [--pub tcp://127.0.0.1:5556] [--duration S]
              [--keys SERVER.key_secret --allow CLIENT_KEYS_DIR | --insecure] [--max-msg-bytes B]
    ris keygen DIR [--name NAME]
    ris simulate [sim://NAME?rows=16&cols=16&bits=1&drop=0.01...] [--protocol ris1|osris] [--duration S]

``add_parser(subparsers)`` registers the ``ris`` sub-parser (registry ``COMMAND_MODULES["ris"]``).
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time

import numpy as np

from .device import Pattern
from isac_opt.errors import UserError

from .errors import RisInputError

__all__ = ["add_parser", "main"]

_URL_HELP = ("device URL: sim://NAME?n=64&bits=1, serial:///dev/ttyUSB0?baud=115200, "
             "osris+serial:///dev/ttyUSB0, zmq://127.0.0.1:5555, or a pty path")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``ris`` sub-parser (with sub-commands) to ``subparsers``; returns it."""
    ris = subparsers.add_parser("ris", help="RIS device control: info, set, get, sweep, serve, simulate",
                                description="Control RIS boards (real, simulated, or behind a ZMQ server).")
    ris.add_argument("-v", "--verbose", action="store_true", help="log link warnings (retries, reboots)")
    ris.set_defaults(func=_usage(ris))
    sub = ris.add_subparsers(dest="ris_command", metavar="{info,set,get,sweep,serve,keygen,simulate}")

    p = sub.add_parser("info", help="identity, geometry, health and status of a device")
    p.add_argument("url", help=_URL_HELP)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("get", help="read back the active pattern")
    p.add_argument("url", help=_URL_HELP)
    p.add_argument("--json", action="store_true", help="print JSON (phase and amp lists)")
    p.set_defaults(func=_cmd_get)

    p = sub.add_parser("set", help="apply a pattern (verified by read-back)")
    p.add_argument("url", help=_URL_HELP)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--hex", help="phase states as the board's wire hex string")
    g.add_argument("--states", help="comma-separated phase state per element (logical row-major order)")
    g.add_argument("--zeros", action="store_true", help="all phase states 0")
    g.add_argument("--random", action="store_true", help="uniformly random states (see --seed)")
    g.add_argument("--coef", help=".npy file of N complex coefficients, quantised with the board's table")
    p.add_argument("--amp", default=None, help="amplifier state(s): one integer, or comma-separated per element")
    p.add_argument("--seed", type=int, default=0, help="seed of --random [default=%(default)r]")
    p.set_defaults(func=_cmd_set)

    p = sub.add_parser("sweep", help="apply a sequence of patterns and report per-pattern ack times")
    p.add_argument("url", help=_URL_HELP)
    p.add_argument("--count", type=int, default=16, help="number of patterns [default=%(default)r]")
    p.add_argument("--kind", choices=("random", "single", "walsh"), default="random",
                   help="random states; 'single': element k in state 1; 'walsh': rows of a Walsh-Hadamard "
                        "matrix (1 bit) [default=%(default)r]")
    p.add_argument("--seed", type=int, default=0, help="seed of --kind random [default=%(default)r]")
    p.add_argument("--period-ms", type=float, default=0.0, help="minimum time between patterns [ms]")
    p.add_argument("--json-out", default=None, help="write the per-pattern log as JSON")
    p.add_argument("--force", action="store_true", help="overwrite --json-out if it exists")
    p.set_defaults(func=_cmd_sweep)

    p = sub.add_parser("serve", help="own the device and serve it over ZMQ (REQ/REP + PUB)")
    p.add_argument("url", help=_URL_HELP)
    p.add_argument("--rep", default="tcp://127.0.0.1:5555", help="REP bind address [default=%(default)r]")
    p.add_argument("--pub", default="tcp://127.0.0.1:5556", help="PUB bind address, '' for none [default=%(default)r]")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.add_argument("--keys", default=None, metavar="SECRET", help="server's CurveZMQ secret key file "
                   "(ris keygen); required to bind a non-loopback address")
    p.add_argument("--allow", default=None, metavar="DIR", help="directory of the authorised clients' public "
                   ".key files (with --keys)")
    p.add_argument("--insecure", action="store_true", help="bind a non-loopback address WITHOUT keys: anyone "
                   "who reaches the port can drive the RIS")
    p.add_argument("--max-msg-bytes", type=int, default=None, help="largest request accepted [bytes] "
                   "[default 262144]")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("keygen", help="write a CurveZMQ key pair NAME.key (public) + NAME.key_secret")
    p.add_argument("dir", help="directory to write the key files into")
    p.add_argument("--name", default="ris-server", help="key name [default=%(default)r]")
    p.set_defaults(func=_cmd_keygen)

    p = sub.add_parser("simulate", help="serve a simulated board on a pty and print its path")
    p.add_argument("url", nargs="?", default="sim://pty?rows=16&cols=16&bits=1",
                   help="sim:// URL describing the board and faults [default=%(default)r]")
    p.add_argument("--protocol", choices=("ris1", "osris"), default=None,
                   help="override the URL's protocol (ris1 or OpenSourceRIS)")
    p.add_argument("--reboot-every", type=int, default=0, help="reboot on every k-th frame (0: never)")
    p.add_argument("--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)")
    p.set_defaults(func=_cmd_simulate)
    return ris


def _usage(parser):
    def handler(args) -> int:
        parser.print_help(sys.stderr)
        return 2
    return handler


def _open(url):
    from .url import open_ris
    return open_ris(url)


def _guard(fn):
    def wrapper(args) -> int:
        logging.basicConfig(level=logging.INFO if getattr(args, "verbose", False) else logging.ERROR,
                            format="%(levelname)s %(name)s: %(message)s")
        try:
            return fn(args)
        except (UserError, OSError) as e:   # user errors and unavailable ports; anything else is a bug
            print(f"isac-testbed ris {args.ris_command}: error: {e}", file=sys.stderr)
            return 2
    wrapper.__name__ = fn.__name__
    return wrapper


@_guard
def _cmd_info(args) -> int:
    with _open(args.url) as dev:
        info, health = dev.info(), dev.health()
        if args.json:
            print(json.dumps(dict(info.to_dict(), health=health.to_dict()), indent=1))
        else:
            print(repr(dev))
            print(f"  health     : supply {health.supply_v} V, temp {health.temp_c} degC, "
                  f"uptime {health.uptime_s} s, boots {health.boots}")
    return 0


@_guard
def _cmd_get(args) -> int:
    with _open(args.url) as dev:
        p = dev.read_back()
        ph, am = p.to_hex(dev.board)
        if args.json:
            print(json.dumps({"phase": list(p.phase), "amp": list(p.amp), "hex": ph, "amp_hex": am}))
        else:
            print(f"phase {ph}" + (f"  amp {am or list(p.amp)}" if p.amp else ""))
    return 0


def _amp_arg(text, board):
    if board.amp_len == 0:
        if text not in (None, ""):
            raise RisInputError("--amp: this board has no amplifier field")
        return ()
    if text is None:
        return (0,) * board.amp_len
    vals = [int(x) for x in text.split(",")]
    return tuple(vals * board.amp_len) if len(vals) == 1 else tuple(vals)


@_guard
def _cmd_set(args) -> int:
    from .quantize import coefficients, quantize

    with _open(args.url) as dev:
        b = dev.board
        try:   # the user's pattern (hex, states, amplitude, coefficient file) is checked here
            if args.hex is not None:
                p = Pattern.from_hex(b, args.hex.upper(), Pattern((0,) * b.n, _amp_arg(args.amp, b)).to_hex(b)[1])
            elif args.states is not None:
                p = Pattern(tuple(int(x) for x in args.states.split(",")), _amp_arg(args.amp, b))
            elif args.zeros:
                p = Pattern((0,) * b.n, _amp_arg(args.amp, b))
            elif args.random:
                p = Pattern.random(b, np.random.default_rng(args.seed))
                if args.amp is not None:
                    p = Pattern(p.phase, _amp_arg(args.amp, b))
            else:
                coef = np.load(args.coef)
                p = quantize(coef, b, amp_state=None if args.amp is None else int(args.amp))
                err = np.abs(coef - coefficients(p, b))
                print(f"quantised {args.coef}: max |coef - gamma| = {err.max():.4f}, rms = {np.sqrt(np.mean(err**2)):.4f}")
            p.validate(b)
        except ValueError as e:
            raise RisInputError(f"pattern: {e}") from None
        ack = dev.apply(p)
        print(f"applied {p.to_hex(b)[0]}  attempts {ack.attempts}  cycles {ack.cycles}  t_ack {ack.t_ack:.6f}")
    return 0


def _sweep_patterns(kind, board, count, seed):
    rng = np.random.default_rng(seed)
    for k in range(count):
        if kind == "random":
            yield Pattern.random(board, rng)
        elif kind == "single":
            ph = np.zeros(board.n, np.int64)
            ph[k % board.n] = 1
            yield Pattern.from_arrays(ph, (0,) * board.amp_len)
        else:
            from scipy.linalg import hadamard
            m = 1 << max(0, (board.n - 1).bit_length())
            row = hadamard(m)[k % m, : board.n]
            yield Pattern.from_arrays((row < 0).astype(np.int64), (0,) * board.amp_len)


@_guard
def _cmd_sweep(args) -> int:
    if args.count < 1:
        raise RisInputError("--count: expected a positive integer")
    if args.json_out:               # checked before the sweep, not after minutes of applying patterns
        import os
        out = os.path.abspath(args.json_out)
        if os.path.isdir(out):
            raise RisInputError(f"--json-out {args.json_out}: is a directory, expected a file")
        if os.path.exists(out) and not args.force:
            raise RisInputError(f"--json-out {args.json_out}: file exists; pass --force to overwrite it")
        if not os.access(os.path.dirname(out) or ".", os.W_OK):
            raise RisInputError(f"--json-out {args.json_out}: its folder is missing or not writable")
    log = []
    with _open(args.url) as dev:
        t_start = time.monotonic()
        for k, p in enumerate(_sweep_patterns(args.kind, dev.board, args.count, args.seed)):
            t0 = time.monotonic()
            ack = dev.apply(p)
            log.append({"k": k, "hex": p.to_hex(dev.board)[0], "t_ack": ack.t_ack, "attempts": ack.attempts,
                        "latency_s": time.monotonic() - t0})
            print(f"{k:5d}  {log[-1]['hex'][:32]:32s}  attempts {ack.attempts}  {1e3 * log[-1]['latency_s']:.2f} ms")
            left = args.period_ms / 1e3 - (time.monotonic() - t0)
            if left > 0:
                time.sleep(left)
        dt = time.monotonic() - t_start
        print(f"{args.count} patterns in {dt:.3f} s ({args.count / dt:.1f} patterns/s)")
    if args.json_out:
        with open(args.json_out, "w") as fh:
            json.dump({"url": args.url, "kind": args.kind, "patterns": log}, fh, indent=1)
    return 0


def _wait(duration):
    ev = threading.Event()
    try:
        ev.wait(duration)
    except KeyboardInterrupt:
        pass


@_guard
def _cmd_serve(args) -> int:
    from .zmq_link import RisServer

    from .zmq_link import MAX_MSG_BYTES
    sec = dict(secret_key=args.keys, allow_dir=args.allow, insecure=args.insecure,
               max_msg_bytes=args.max_msg_bytes or MAX_MSG_BYTES)
    RisServer.check_security(args.rep, args.pub or None, **sec)     # before opening the device
    dev = _open(args.url)
    with RisServer(dev, args.rep, args.pub or None, own_device=True, name=args.url, **sec) as srv:
        srv.start()
        print(f"serving {args.url} on REP {srv.rep_endpoint}" + (f", PUB {srv.pub_endpoint}" if srv.pub_endpoint else ""),
              flush=True)
        _wait(args.duration)
    return 0


@_guard
def _cmd_keygen(args) -> int:
    from pathlib import Path
    from .zmq_link import generate_keys
    if (Path(args.dir) / f"{args.name}.key_secret").exists():
        raise RisInputError(f"{args.dir}/{args.name}.key_secret exists; refusing to overwrite a key")
    pub, sec = generate_keys(args.dir, args.name)
    print(f"public {pub} (give it to the other side)\nsecret {sec} (keep private)")
    return 0


@_guard
def _cmd_simulate(args) -> int:
    from .sim import PtySimulator
    from .url import simulator_from_url

    url = args.url
    if args.protocol:
        url += ("&" if "?" in url else "?") + f"protocol={args.protocol}"
    sb = simulator_from_url(url)
    sb.faults.reboot_every = args.reboot_every
    with PtySimulator(sb) as ps:
        scheme = "osris+serial" if sb.protocol == "osris" else "serial"
        print(ps.path, flush=True)
        print(f"# {sb.protocol} simulator of {sb.board.describe()}; open with {scheme}://{ps.path}",
              file=sys.stderr, flush=True)
        _wait(args.duration)
    return 0


def main(argv=None) -> int:
    """``python -m ris_driver [ris] info URL ...`` (the leading ``ris`` is optional)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in ("info", "set", "get", "sweep", "serve", "keygen", "simulate", "-v", "--verbose"):
        argv.insert(0, "ris")
    parser = argparse.ArgumentParser(prog="python -m ris_driver", description="RIS device control "
                                     "(same commands as 'isac-testbed ris')")
    subs = parser.add_subparsers(dest="command", metavar="ris", required=True)
    add_parser(subs)
    args = parser.parse_args(argv)
    return args.func(args)
