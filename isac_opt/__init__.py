"""isac_opt — pure numerics of the RIS-ISAC testbed (numpy/scipy/torch; never gnuradio, serial or zmq).

Scenarios (:mod:`isac_opt.scenario`, per paper in ``paper_a/`` and ``paper_b/``), channels, CI margins, radar/MVDR/SINR, CRB, initialisations, the
papers' algorithms and the design file. Maths: ``shared/spec/ris_isac_math.md``.
"""
__version__ = "0.1.0"
