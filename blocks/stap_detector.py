"""STAP detector (GRC: ``risisac_stap_detector``): frames the M radar streams by tags, applies w, thresholds.

In: complex64 vlen M. Out 0 (optional): float32, one item per accepted frame = T/ε0 (threshold −ln Pfa);
out 1 (optional): the running SINR estimate [dB] after that frame (exponential memory ``window`` frames,
from the ``target`` truth tags).
Messages: ``detections`` (one flat dict per detection), ``status`` (every ``report_every`` frames: frames,
SINR estimate, measured Pfa/Pd); in ``ris`` (dict with ``coefficients``: the RIS state assumed for ε0).
Core: :class:`isac_opt.bench.stap.DetectorCore`; :meth:`results` / :meth:`summary` after the run.

``rx_cal`` (optional): an RX :class:`calibration.ChainCal` file (``isac-testbed calibrate chains --side rx``);
the M radar streams are then corrected before the filter, y_i[t] = x_i[t − (D − d_i)]/g_i
(:class:`calibration.use.RxCorrector`, common latency D samples; the ``frame``/``target`` tags are moved by
D with the data, so the last frame of a finite run, whose end marker falls past the stream, is dropped).
``cal_key``: the bench key; a stale file is refused at construction (one-line StaleCalibrationError).

``table`` (the live link, issue 13): the name of a :class:`isac_opt.link.stream.DesignTable` filled by
``risisac_link_designer``. Every frame then has its own waveform: the statistic of frame f uses the MVDR
filter of the frame actually sent, looked up by the frame id tag (z_f = T_f/ε0_f with ε0_f = ξ0²/SINR_f,
:func:`isac_opt.link.stream.radar_statistic`); idle (``frame = -2``) and unknown frames are skipped
(counted in ``results()['missing']``). ``results()`` adds the predicted SINR per frame, ``summary()`` the
measured (mean z | target − mean z | no target) and predicted mean SINR.
"""
from __future__ import annotations

import numpy as np
import pmt
from gnuradio import gr

from blocks._tags import read_tags
from isac_opt.bench.framing import DESIGN_KEY, FRAME_KEY, TARGET_KEY, DesignTrack
from isac_opt.bench.stap import DetectorCore


class stap_detector(gr.basic_block):
    """T = |wᴴ vec(R)|² per frame, NP threshold at ``pfa``, online SINR; ``design`` '' = follow the tags."""

    def __init__(self, M=6, pfa=1e-3, design="", report_every=1000, publish=True, window=1000, rx_cal="",
                 cal_key="", table=""):
        self.rx_corr = None
        if str(table or "") and str(rx_cal or ""):
            from isac_opt.errors import ConfigError
            raise ConfigError("stap_detector: 'table' (per-frame link filters) does not apply 'rx_cal'; "
                              "give one of them")
        if str(rx_cal or ""):
            from calibration.use import RxCorrector, load_chain_cal, parse_key
            cal = load_chain_cal(str(rx_cal), n_chains=int(M), side="rx", expect_key=parse_key(cal_key),
                                 who="stap_detector rx_cal")
            self.rx_corr = RxCorrector(cal)
        self._held = {FRAME_KEY: (np.zeros(0, np.int64), []), TARGET_KEY: (np.zeros(0, np.int64), [])}
        gr.basic_block.__init__(self, name="stap_detector", in_sig=[(np.complex64, int(M))],
                                out_sig=[np.float32, np.float32])
        self.window = int(window)
        self.track = DesignTrack()
        self._fixed = None
        if str(design):
            from isac_opt.designfile import load_design
            d = load_design(str(design))
            self._fixed = self.track.preload(d, str(design))
        self.core = DetectorCore(float(pfa), int(M), self.track)
        self.report_every, self.publish = int(report_every), bool(publish)
        self._pending = np.zeros((2, 0), np.float32)
        self._next_report = self.report_every
        self.table_name = str(table or "")
        self._link = None                      # per-frame mode state (table)
        for p in ("detections", "status"):
            self.message_port_register_out(pmt.intern(p))
        self.message_port_register_in(pmt.intern("ris"))
        self.set_msg_handler(pmt.intern("ris"), self._on_ris)
        self.set_tag_propagation_policy(gr.TPP_DONT)

    def set_pfa(self, pfa: float) -> None:
        """GRC callback: new false-alarm probability (threshold -ln(pfa)) from the next frame on."""
        if not 0 < float(pfa) < 1:
            raise ValueError(f"stap_detector: pfa must be in (0, 1), got {pfa!r}")
        self.core.pfa = float(pfa)

    def _on_ris(self, msg):
        v = pmt.to_python(msg)
        if isinstance(v, dict) and v.get("ok", True) and v.get("coefficients") is not None:
            self.core.set_phi(v["coefficients"])

    def forecast(self, noutput_items, ninputs):
        return [1] * ninputs

    def general_work(self, input_items, output_items):
        n = len(input_items[0])
        t0 = self.nitems_read(0)
        tags = read_tags(self, 0, t0, n)
        for tag in tags[DESIGN_KEY][1]:
            if self._fixed is not None:                     # a fixed design: same id, new first frame
                tag = dict(self._fixed, first_frame=tag["first_frame"], F=tag["F"])
            self.track.add(tag)
        x = input_items[0]
        if self.table_name:
            res = self._per_frame(x, t0, tags)
        elif self.rx_corr is not None:               # correct the chains; tags move with the data by D
            x = self.rx_corr.process(x)
            D = self.rx_corr.latency
            for key in (FRAME_KEY, TARGET_KEY):
                ho, hv = self._held[key]
                o = np.concatenate([ho, tags[key][0] + D])
                v = list(hv) + list(tags[key][1])
                now = o < t0 + n
                tags[key] = (o[now], [vv for vv, k in zip(v, now) if k])
                self._held[key] = (o[~now], [vv for vv, k in zip(v, now) if not k])
        if not self.table_name:
            fo, fv = tags[FRAME_KEY]
            to, tv = tags[TARGET_KEY]
            res = self.core.process(x, t0, fo, fv, to, tv)
        self.consume(0, n)
        if res is not None:
            new = np.stack([res["stat"], self.core.running_sinr_db(res["stat"], res["target"], self.window)])
            self._pending = np.concatenate([self._pending, new.astype(np.float32)], axis=1)
            self._publish(res)
        k = min(len(output_items[0]), len(output_items[1]), self._pending.shape[1])
        output_items[0][:k] = self._pending[0, :k]
        output_items[1][:k] = self._pending[1, :k]
        self._pending = self._pending[:, k:]
        return k

    def _per_frame(self, x, t0, tags):
        """Per-frame filters from the design table (see the module docstring); same result dict as the core."""
        from isac_opt.bench.framing import FrameAssembler
        from isac_opt.link.stream import get_table, radar_statistic
        if self._link is None:
            tab = get_table(self.table_name)
            m = tab.meta
            self._link = {"tab": tab, "m": m, "asm": FrameAssembler(m["F"], m["M"], keep=m["L"]),
                          "toffs": np.zeros(0, np.int64), "tvals": np.zeros(0, bool), "frame": [], "stat": [],
                          "target": [], "sinr": [], "missing": 0}
        S = self._link
        to, tv = tags[TARGET_KEY]
        if len(to):
            S["toffs"] = np.concatenate([S["toffs"], to])
            S["tvals"] = np.concatenate([S["tvals"], np.asarray(tv, bool)])
        fo, fv = tags[FRAME_KEY]
        frames, ids, starts = S["asm"].push(x, t0, fo, fv)
        if ids.size == 0:
            return None
        ent = S["tab"].get_many(ids)
        have = np.array([e is not None for e in ent])
        S["missing"] += int((~have).sum())
        hit = np.searchsorted(S["toffs"], starts)
        okt = (hit < S["toffs"].size) & (S["toffs"][np.minimum(hit, max(S["toffs"].size - 1, 0))] == starts) \
            if S["toffs"].size else np.zeros(ids.size, bool)
        tgt = np.full(ids.size, -1, np.int8)
        tgt[okt] = S["tvals"][hit[okt]].astype(np.int8)
        later = S["toffs"] > starts[-1]
        S["toffs"], S["tvals"] = S["toffs"][later], S["tvals"][later]
        if not have.any():
            return None
        W = np.stack([e[1] for e in ent if e is not None])
        sinr = np.array([e[2] for e in ent if e is not None])
        m = S["m"]
        z = radar_statistic(W, frames[have], sinr, m["xi0_sq"], m["noise_radar_w"])
        out = {"frame": ids[have], "stat": z, "target": tgt[have], "detected": z > -np.log(self.core.pfa),
               "sinr": sinr}
        for k in ("frame", "stat", "target", "sinr"):
            S[k].append(out[k])
        self.core.n_frames += int(ids[have].size)
        return out

    def _publish(self, res):
        thr = -np.log(self.core.pfa)
        for i in (np.flatnonzero(res["detected"]) if self.publish else ()):
            self.message_port_pub(pmt.intern("detections"), pmt.to_pmt({
                "frame": int(res["frame"][i]), "stat": float(res["stat"][i]), "threshold": float(thr),
                "range_bin": int(self.track.design(0).scenario.target_bin) if self.track.tags else -1,
                "target": int(res["target"][i])}))
        if self.core.n_frames >= self._next_report:
            self._next_report += self.report_every
            self.message_port_pub(pmt.intern("status"), pmt.to_pmt(self.summary()))

    def results(self) -> dict:
        if self.table_name:
            S = self._link or {"frame": [], "stat": [], "target": [], "sinr": [], "missing": 0, "asm": None}
            cat = lambda v, dt: np.concatenate(v) if v else np.zeros(0, dt)
            return {"frame": cat(S["frame"], np.int64), "stat": cat(S["stat"], float),
                    "target": cat(S["target"], np.int8), "sinr_pred": cat(S["sinr"], float),
                    "missing": S["missing"], "dropped": S["asm"].dropped if S["asm"] is not None else 0}
        return self.core.results()

    def summary(self) -> dict:
        if self.table_name:
            from isac_opt.link.stream import radar_sinr
            r = self.results()
            sel = r["target"] >= 0                              # frames with a truth tag
            meas, pred = radar_sinr(r["stat"][sel], r["target"][sel] == 1, r["sinr_pred"][sel])
            db = lambda v: float(10 * np.log10(v)) if v > 0 else float("nan")
            return {"frames": int(r["frame"].size), "dropped": int(r["dropped"]), "missing": int(r["missing"]),
                    "sinr_est_db": db(meas), "sinr_pred_db": db(pred)}
        return self.core.summary()
