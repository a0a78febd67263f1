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


class AnswerSlot:
    """One job's place among ANSWERS_IN_HAND: taken before its answer is read, given back once it is stored."""

    def __init__(self) -> None:
        self.held = False

    def take(self) -> None:
        """Wait for a place (once; taking it again while held does nothing)."""
        if not self.held:
            ANSWERS_IN_HAND.acquire()
            self.held = True

    def give_back(self) -> None:
        """Free the place, if held, for the next answer waiting to be read."""
        if self.held:
            self.held = False
            ANSWERS_IN_HAND.release()
