"""GNU Radio blocks of the RIS-ISAC testbed.

Import blocks by module (``from blocks.slp_source import slp_source``), never ``import blocks``: in a
generated flowgraph that name would clobber GNU Radio's own ``blocks`` (style.md §1).
"""
