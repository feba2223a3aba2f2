"""One reproduction harness for every paper's figure/table targets: sweep → seeded chunks → executor →
keyed, checksummed resume store → CSV/PNG (:mod:`.harness`, :mod:`.store`)."""
from .harness import Chunk, figure, line_plot, run_chunked, spawn_seed, split, write_records, write_table
from .store import ChunkStore, atomic_write_text, software_fingerprint

__all__ = ["Chunk", "ChunkStore", "atomic_write_text", "figure", "line_plot", "run_chunked", "software_fingerprint",
           "spawn_seed", "split", "write_records", "write_table"]
