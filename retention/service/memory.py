"""Handing the memory a run freed back to the system: the daemon idles for hours between runs."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def return_memory() -> None:
    """Collect garbage, then ask glibc to return freed pages (elsewhere, only the collection)."""
    gc.collect()
    libc_name = ctypes.util.find_library("c")
    if libc_name is not None:
        libc = ctypes.CDLL(libc_name)
        if hasattr(libc, "malloc_trim"):  # glibc only
            libc.malloc_trim(0)
