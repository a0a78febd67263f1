"""How much of a burst of answers one worker process holds and works on at once; the rest waits in its sockets."""

from __future__ import annotations

import os
import threading

CORES = os.cpu_count() or 1
# Decoding and thumbnailing are the CPU-heavy part of a job: one per core at a time in a process, however many
# jobs are in flight, so only a few decoded images are held at once.
PIXEL_WORK = threading.BoundedSemaphore(CORES)
# Answers read but not yet stored: a burst of answers can arrive within milliseconds of each other. Unread, an
# answer stays in its socket, where TCP's window holds back what the kernel's buffers do not take, instead of in
# this process. Twice the pixel slots keeps reading, writing and recording going while the cores decode.
ANSWERS_IN_HAND = threading.BoundedSemaphore(2 * CORES)
MIB = 1024 * 1024


class ByteBudget:
    """At most `capacity` bytes held at once by those who take from it; one taker larger than all of it goes alone.

    Counting places is enough while every answer is a few MB; a 16 MP upscale's PNG is tens of MB, its pixels 48 MB,
    so what a process holds is bounded by bytes too."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.used = capacity, 0
        self._changed = threading.Condition()

    def take(self, size: int) -> None:
        """Wait until `size` more bytes fit (or nothing else is held)."""
        with self._changed:
            while self.used and self.used + size > self.capacity:
                self._changed.wait()
            self.used += size

    def give_back(self, size: int) -> None:
        """Return bytes taken."""
        with self._changed:
            self.used -= size
            self._changed.notify_all()


# Answers in hand, counted twice (the answer, and the copy that carries its metadata while it is made).
ANSWER_BYTES = ByteBudget(96 * MIB)
# Pixels being decoded, counted twice (the decoder's buffer and the copy Pillow gets).
PIXEL_BYTES = ByteBudget(128 * MIB)


class AnswerSlot:
    """One job's place among ANSWERS_IN_HAND and its bytes of ANSWER_BYTES: taken before its answer is read, given
    back once it is stored."""

    def __init__(self) -> None:
        self.held = False
        self.size = 0

    def take(self, size: int = 0) -> None:
        """Wait for a place and room for an answer of `size` bytes (once; taking it again while held does nothing)."""
        if not self.held:
            ANSWERS_IN_HAND.acquire()
            self.size = 2 * size
            ANSWER_BYTES.take(self.size)
            self.held = True

    def give_back(self) -> None:
        """Free the place, if held, for the next answer waiting to be read."""
        if self.held:
            self.held = False
            ANSWER_BYTES.give_back(self.size)
            ANSWERS_IN_HAND.release()


class PixelWork:
    """A decode's turn: one of PIXEL_WORK, and room in PIXEL_BYTES for its pixels."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __enter__(self) -> PixelWork:
        PIXEL_WORK.acquire()
        PIXEL_BYTES.take(self.size)
        return self

    def __exit__(self, *exc: object) -> None:
        PIXEL_BYTES.give_back(self.size)
        PIXEL_WORK.release()
