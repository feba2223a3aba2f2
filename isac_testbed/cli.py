"""``isac-testbed`` — the command line of the RIS-ISAC testbed.

Sub-commands are declared in :data:`COMMANDS` as data (name, one-line help, ``"module:add_parser"``) and
only the one being run is imported, so ``isac-testbed --help`` imports no torch, gnuradio, cvxpy or
matplotlib. Errors: every :class:`~isac_opt.errors.UserError` (bad input, damaged file, unavailable
hardware, a device that does not answer, an infeasible design) prints one line
``isac-testbed COMMAND: error: MESSAGE`` and exits with status 2 — anything else is a bug and keeps its
traceback.
"""
from __future__ import annotations

import argparse
import os
import sys

from isac_opt.errors import UserError

PROG = "isac-testbed"

#: name -> (help, "module:add_parser"); ``add_parser(subparsers)`` adds ONE sub-parser named like the key
#: and sets ``func(args) -> exit code``.
COMMANDS = {
    "design": ("design waveform, RIS and filter for a scenario", "isac_testbed.commands:add_design"),
    "evaluate": ("evaluate a design file (SINR/SCNR, CRB, CI margin, SER, Pd)", "isac_testbed.commands:add_evaluate"),
    "scenario": ("print a built-in scenario as TOML (a template to edit)", "isac_testbed.commands:add_scenario"),
    "train": ("train a learned design network", "isac_testbed.commands:add_train"),
    "reproduce": ("reproduce the papers' figures and tables (PNG + CSV)", "isac_testbed.commands:add_reproduce"),
    "demo": ("the main job: run the simulated bench end to end and report", "isac_testbed.commands:add_demo"),
    "run": ("run the simulated (or hardware) bench flowgraph and report measured vs designed",
            "isac_testbed.run:add_parser"),
    "ris": ("RIS driver: info / set / get / sweep / serve / simulate", "ris_driver.cli:add_parser"),
    "calibrate": ("measure and estimate bench calibrations (chains, channels, ris, clutter)",
                  "isac_testbed.calibrate:add_parser"),
    "link": ("live ISAC link: payload bytes in, per-frame SLP designs, bytes out, radar", "isac_testbed.link:add_parser"),
    "encode": ("offline link: design a payload ahead into a SigMF transmit file", "isac_testbed.offline:add_encode"),
    "decode": ("offline link: decode a SigMF capture into bytes per user and a report", "isac_testbed.offline:add_decode"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The root parser; the full sub-parser is built for ``only`` (or every command when None)."""
    p = argparse.ArgumentParser(prog=PROG, description="isac-testbed: design, run and calibrate the RIS-ISAC testbed",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    from isac_opt.registry import resolve
    for name, (help_, entry) in COMMANDS.items():
        if only is None or name == only:
            resolve(entry)(sub)
        else:   # a placeholder listed in --help; its real parser is built when it is the command run
            sub.add_parser(name, help=help_, add_help=False)
    return p


def _command_of(argv: list[str]) -> str | None:
    for a in argv:
        if not a.startswith("-"):
            return a if a in COMMANDS else None
        if a in ("-h", "--help"):
            return None
    return None


def error_line(command: str | None, msg) -> str:
    """The one format of a user error: ``isac-testbed COMMAND: error: MESSAGE`` (argparse's own style)."""
    where = f"{PROG} {command}" if command else PROG
    return f"{where}: error: {msg}"


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = _command_of(argv)
    try:
        args = build_parser(command or "-").parse_args(argv)
        if getattr(args, "pfa", None) is not None:     # every command that takes --pfa, checked once
            from isac_opt.validate import check_pfa
            args.pfa = check_pfa(args.pfa)
        return int(args.func(args) or 0)
    except UserError as e:
        print(error_line(command, e), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(error_line(command, "interrupted"), file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into e.g. `head`: stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
