"""glibc malloc tuning for the threaded worker: fewer arenas, and freed pixel memory handed back to the system."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import threading

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h
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


def limit_arenas(count: int) -> None:
    """Cap glibc's malloc arenas; call before the slot threads start, so forked worker processes inherit it."""
    # glibc gives busy threads arenas of their own (up to 8 per core); each keeps the peak of the
    # decoded images it once held, so 150 slots multiplied the peak (590 MB) for no speed.
    libc = _glibc()
    if libc is not None and not libc.mallopt(_M_ARENA_MAX, count):
        log.warning("mallopt(M_ARENA_MAX, %d) was refused", count)


def release_free_memory() -> None:
    """Return free heap pages to the system after a large image was freed; one thread at a time, others skip."""
    libc = _glibc()
    if libc is not None and _trim_lock.acquire(blocking=False):
        try:
            libc.malloc_trim(0)
        finally:
            _trim_lock.release()
