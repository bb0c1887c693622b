"""``rtorch.cuda``: device queries. The CUDA backend is not wired in yet, so
``is_available()`` is False everywhere and asking for a CUDA tensor raises a
RuntimeError instead of crashing."""

from __future__ import annotations

from rtorch import _C


def is_available() -> bool:
    """Whether a CUDA device can be used (never raises)."""
    try:
        return bool(_C._cuda_is_available())
    except Exception:
        return False


def device_count() -> int:
    """The number of usable CUDA devices."""
    return int(_C._cuda_device_count()) if is_available() else 0


def manual_seed(seed: int) -> None:
    """Seeds CUDA generators; a no-op until the CUDA backend exists."""


def manual_seed_all(seed: int) -> None:
    """Seeds every CUDA generator; a no-op until the CUDA backend exists."""


def synchronize(device: object = None) -> None:
    """Waits for CUDA work to finish; nothing is ever queued without a device."""
