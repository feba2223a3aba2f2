"""isac_testbed — the application layer of the RIS-ISAC testbed: the ``isac-testbed`` command line and the
bench-run orchestration (design → RIS → flowgraph → report).

Layers read top-down: this package → ``blocks/`` (GNU Radio adapters) → ``calibration/`` (estimators) →
``isac_opt/`` (numerics) and ``ris_driver/`` (RIS devices). Nothing below imports this package.
"""
