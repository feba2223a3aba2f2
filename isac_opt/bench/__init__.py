"""Pure numpy core of the GNU Radio bench (no gnuradio import here).

* :mod:`~isac_opt.bench.framing` — frame layout of the SLP stream, tag keys, frame re-assembly by tags.
* :mod:`~isac_opt.bench.channel` — the simulated RIS-ISAC channel of spec A.3–A.4 as a streaming emulator.
* :mod:`~isac_opt.bench.stap` — STAP test statistic, Neyman–Pearson threshold, SINR estimate, ROC.
* :mod:`~isac_opt.bench.demod` — PSK demodulation per slot, SER/BER counting, measured CI margins.
* :mod:`~isac_opt.bench.report` — the run report (dict + text + PNG).

Every GNU Radio block in ``blocks/`` is a thin adapter around these functions.
"""
