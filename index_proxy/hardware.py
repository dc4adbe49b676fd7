"""Does a machine (a profile) have what a variant build needs? Pure comparisons."""

from __future__ import annotations

from index_proxy.config import CPU_LEVELS, HardwareSpec

__all__ = ["fits"]


def _cuda(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def fits(required: HardwareSpec | None, machine: HardwareSpec | None) -> bool:
    """True when ``machine`` can run a build that needs ``required``.

    A CUDA build runs on a driver that supports its CUDA version or a newer one; a machine
    without CUDA runs no CUDA build.
    """
    if required is None:
        return True
    if machine is None:
        return False
    if not set(required.cpu_features) <= set(machine.cpu_features):
        return False
    if required.cpu_level is not None:
        have = CPU_LEVELS.index(machine.cpu_level) if machine.cpu_level in CPU_LEVELS else 0
        if CPU_LEVELS.index(required.cpu_level) > have:
            return False
    return required.cuda is None or (machine.cuda is not None and _cuda(machine.cuda) >= _cuda(required.cuda))
