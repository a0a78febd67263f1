"""glibc malloc tuning for the threaded worker: few arenas, pixel buffers reused, free memory returned when idle."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading

log = logging.getLogger(__name__)

# From glibc's malloc.h.
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
# Decoded images and Wuffs' buffers (megabytes each) come from the heap and are reused, instead of each being a
# fresh mmap whose pages all fault in and are unmapped after.
LARGE_BUFFERS = 32 << 20
_libc: ctypes.CDLL | None = None
_trim_lock = threading.Lock()


def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has mallopt and malloc_trim), else None: musl and macOS skip all this."""
    global _libc
    if _libc is None:
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            libc.mallopt, libc.malloc_trim  # noqa: B018  (AttributeError outside glibc)
        except (OSError, AttributeError):
            return None
        _libc = libc
    return _libc


def tune_for_workers(arenas: int) -> None:
    """Cap glibc's arenas and keep large buffers in the heap; call before the slot threads start, so forked
    worker processes inherit it. glibc's own environment variables, where an operator set them, win."""
    libc = _glibc()
    if libc is None:
        return
    # glibc gives busy threads arenas of their own (up to 8 per core); each keeps the peak of the decoded images it
    # once held, so many slots multiply the peak for no speed. Pixel work is bounded (one decode per core
    # at a time, slots.PIXEL_WORK), so what the heaps keep is bounded too; release_free_memory gives it back
    # when the process goes idle.
    settings = [("MALLOC_ARENA_MAX", _M_ARENA_MAX, arenas),
                ("MALLOC_MMAP_THRESHOLD_", _M_MMAP_THRESHOLD, LARGE_BUFFERS),
                ("MALLOC_TRIM_THRESHOLD_", _M_TRIM_THRESHOLD, 2 * LARGE_BUFFERS)]
    for variable, option, value in settings:
        if variable not in os.environ and not libc.mallopt(option, value):
            log.warning("mallopt(%s, %d) was refused", variable, value)


def release_free_memory() -> None:
    """Return free heap pages to the system (when a process has nothing left to do); one thread at a time."""
    libc = _glibc()
    if libc is not None and _trim_lock.acquire(blocking=False):
        try:
            libc.malloc_trim(0)
        finally:
            _trim_lock.release()
