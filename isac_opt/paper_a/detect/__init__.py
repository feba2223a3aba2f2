"""Paper A target detection [spec A.5, A.6, A.11, A.13].

* :mod:`.core`      variants, A.10 start points, torch batches;
* :mod:`.admm_mm`   ADMM-MM reference (cvxpy + Clarabel, real-valued, built once) and its variants;
* :mod:`.unfolded`  the unfolded ADMM-ALM-DFP network: weights I/O, batched inference, CI repair;
* :mod:`.train`     layer-by-layer trainer (``isac-testbed train detect``);
* :mod:`.methods`   design methods ``unfolded``, ``unfolded-lite``, ``admm-mm``, ``radar-only``, ``random-ris``,
  ``no-ris``;
* :mod:`.reproduce` figures 4–7, Table I, ``detect-layers`` (``isac-testbed reproduce fig4 …``) and the
  default-scenario summary (``python -m isac_opt.paper_a.detect.reproduce``).

User documentation and measured results: ``docs/detection.md``.

Importing :mod:`.methods` also registers the trainer and the reproduction targets.
"""
