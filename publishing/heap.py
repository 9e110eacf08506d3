"""Handing the builder's free heap back to the system before it forks its render workers."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
    except OSError:
        return None
    return getattr(libc, "malloc_trim", None)


def heap_trim() -> bool:
    """Give the pages of the heap that hold nothing back to the system; whether any were.

    What the builder freed while it loaded the catalog stays resident in its heap, and a
    forked worker shares it: counted in the publish's memory though nothing uses it."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
