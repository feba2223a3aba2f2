"""``python -m ris_driver [ris] {info,set,get,sweep,serve,simulate} ...`` (see ``ris_driver.cli``)."""
import sys

from .cli import main

sys.exit(main())
