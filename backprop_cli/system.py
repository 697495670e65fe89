"""What the machine has: the memory a run may use, asked before anything big is allocated, and
the cores it may run on."""

from __future__ import annotations

import os


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux's MemAvailable, else the physical
    memory), or None where it cannot be known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def gigabytes(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def usable_cores() -> int:
    """The cores this process may run on."""
    for get in (getattr(os, "process_cpu_count", None), lambda: len(os.sched_getaffinity(0))):
        try:
            n = get() if get else None
        except (AttributeError, OSError):
            n = None
        if n:
            return n
    return os.cpu_count() or 1
