"""Shared by the benchmark and the soak: statistics and the machine a result came from."""

from __future__ import annotations

import os
import platform
import statistics


def stats(vals: list[float]) -> dict:
    """n, median, p95 and max, rounded to 0.1 (milliseconds in every caller)."""
    vals = sorted(vals)
    if not vals:
        return {}
    return {"n": len(vals), "median": round(statistics.median(vals), 1),
            "p95": round(vals[min(len(vals) - 1, round(0.95 * (len(vals) - 1)))], 1),
            "max": round(vals[-1], 1)}


def machine() -> dict:
    with open("/proc/cpuinfo") as f:
        model = next((line.split(":", 1)[1].strip() for line in f if "model name" in line),
                     "?")
    return {"cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "loadavg_at_start": os.getloadavg(),
            "cpu_model": model}
