"""RIS control (GRC: ``risisac_ris_control``): message in → RIS driver → verified applied state out.

In ``command``: a design path (string), or a dict with one of ``path`` (design file), ``phi`` /
``coefficients`` (complex (N,)), ``random`` (seed: uniformly random phases), ``phase`` (raw states).
Out ``applied``: a flat dict ``{"ok", "seq", "t_ack_s", "t_host_s", "attempts", "pattern", "coefficients",
"url"}`` (``coefficients`` = the board's effective complex coefficients of the applied, read-back
pattern), or ``{"ok": False, "seq", "error", "error_type", "url"}`` on a driver failure, after which
the last verified state stays in force. The driver runs in a worker thread: the scheduler never blocks.
"""
from __future__ import annotations

import queue
import threading
import time

import numpy as np
import pmt
from gnuradio import gr

from blocks._ris import coefficients_for_command


class ris_control(gr.basic_block):
    """Command a RIS through ``ris_driver.open_ris(url)`` without blocking the flowgraph."""

    def __init__(self, url="sim://bench?n=64&bits=2", initial=""):
        gr.basic_block.__init__(self, name="ris_control", in_sig=None, out_sig=None)
        self.url = str(url)
        self.message_port_register_in(pmt.intern("command"))
        self.message_port_register_out(pmt.intern("applied"))
        self.set_msg_handler(pmt.intern("command"), self._on_command)
        self._q: queue.Queue = queue.Queue()
        self._dev = None
        self._seq = 0
        self.last = None                    # last verified state (dict) or None
        self.errors = 0
        self._thread = threading.Thread(target=self._worker, name="ris_control", daemon=True)
        self._thread.start()
        if str(initial):
            self.command(str(initial))

    def _on_command(self, msg):
        self.command(pmt.to_python(msg))

    # public API (also usable from Python) -------------------------------------------------------
    def command(self, cmd) -> int:
        """Queue a command (see module doc); returns its sequence number."""
        self._seq += 1
        self._q.put((self._seq, cmd))
        return self._seq

    def set_initial(self, cmd) -> None:
        """GRC callback of the 'initial' (state) parameter: command the new state when it changes."""
        if str(cmd):
            self.command(str(cmd))

    def wait_idle(self, timeout_s: float = 5.0) -> bool:
        """Block (outside the scheduler) until every queued command is handled."""
        t_end = time.monotonic() + timeout_s
        while time.monotonic() < t_end:
            if self._q.unfinished_tasks == 0:
                return True
            time.sleep(0.005)
        return False

    def stop(self):
        self._q.put(None)
        return True

    # worker --------------------------------------------------------------------------------------
    def _worker(self):
        while True:
            item = self._q.get()
            try:
                if item is None:
                    if self._dev is not None:
                        self._dev.close()
                    return
                self._handle(*item)
            finally:
                self._q.task_done()

    def _handle(self, seq, cmd):
        from ris_driver import coefficients, open_ris, quantize, Pattern
        try:
            if self._dev is None:
                self._dev = open_ris(self.url)
            board = self._dev.info().board
            pat = cmd.get("phase") if isinstance(cmd, dict) else None
            if pat is not None:
                pattern = Pattern.from_arrays(np.asarray(pat, np.int64), cmd.get("amp", ()))
            else:
                pattern = quantize(coefficients_for_command(cmd, board.n), board)
            ack = self._dev.apply(pattern)
            state = {"ok": True, "seq": seq, "url": self.url, "t_ack_s": float(ack.t_ack),
                     "t_host_s": time.time(), "attempts": int(ack.attempts),
                     "pattern": np.asarray(ack.pattern.phase, np.int64).astype(np.uint8),
                     "coefficients": np.asarray(coefficients(ack.pattern, board), np.complex64)}
            self.last = state
        except Exception as e:          # every driver/command failure becomes a message, never a crash
            self.errors += 1
            state = {"ok": False, "seq": seq, "url": self.url, "error": str(e), "error_type": type(e).__name__,
                     "t_host_s": time.time()}
        self.message_port_pub(pmt.intern("applied"), pmt.to_pmt(state))
