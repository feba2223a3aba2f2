"""Paper A's DoA-estimation task: CRB-minimising unfolded ADMM-PHR-ALM-DFP [spec A.8, A.9, A.11.5–6].

:mod:`.crb_torch`     structured, batched, differentiable CRB (closed-form reverse mode + autograd path)
:mod:`.model`         DoaConfig, A.10 starts, DoaBatch, classical solve, DoaNet (unfolded), CI repair
:mod:`.multistart`    certified multi-start runs (A.10 + detection starts, best feasible candidate; issue 12)
:mod:`.unsupervised`  the unsupervised MLP baseline (zero-padded users for the K→K* transfer test)
:mod:`.train`         layer-by-layer training; ``isac-testbed train doa``
:mod:`.methods`       registrations (methods, trainer, reproduce targets fig8/fig9/fig10/table2)
:mod:`.figures`       the reproduction targets
:mod:`.layers`        ``doa-layers``: held-out CRB vs layers and time, trained vs untrained (issue 14)
See docs/doa.md.
"""
