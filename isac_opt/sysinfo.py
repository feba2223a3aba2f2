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
