"""Machine description for benchmark tables and timing reports (Table I/II, benchmarks/)."""
from __future__ import annotations

import platform


def machine_description() -> str:
    """CPU model name (from /proc/cpuinfo where available), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_line() -> str:
    """One line for a benchmark table: host | CPU model | cores | Python | numpy | OS."""
    import os

    import numpy as np
    return (f"{platform.node()} | {machine_description()} | {os.cpu_count()} cores | Python "
            f"{platform.python_version()} | numpy {np.__version__} | {platform.system()} {platform.release()}")
