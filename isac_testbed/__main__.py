"""``python -m isac_testbed`` = ``isac-testbed``."""
import sys

from .cli import main

sys.exit(main())
