"""What the benchmarks say about the machine they ran on. The project's machine is not always
the same host: the same code measured on two processors differs more than most changes do, so
every table names the processor next to its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def processor() -> str:
    """The processor's model name as the kernel reports it (``platform`` is vaguer)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            name, _, value = line.partition(":")
            if name.strip() == "model name" and value.strip():
                return value.strip()
    return platform.processor() or platform.machine() or "unknown processor"


def machine() -> str:
    """For example ``2-core machine (Intel(R) Xeon(R) Processor @ 2.00GHz)``."""
    return f"{os.cpu_count()}-core machine ({processor()})"
