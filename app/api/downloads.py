"""Following batches from the command line: a live progress line until they are final, then the files."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import click
import sqlalchemy as sa

from app.extensions import db
from app.media.archive import file_extension, prompt_slug
from app.media_store.stores import Stores
from app.models import Generation, Status

POLL_SECONDS = 1.0
BAR_WIDTH = 30


@dataclass(frozen=True)
class Tally:
    """Where a set of batches stands: images done, failed (filtered and canceled too), and in all."""

    done: int
    failed: int
    total: int

    @property
    def pending(self) -> int:
        """Images still queued or running."""
        return self.total - self.done - self.failed


def tally(batch_ids: list[int]) -> Tally:
    """Count the batches' generations by outcome, in one grouped query."""
    rows = db.session.execute(sa.select(Generation.status, sa.func.count()).where(Generation.batch_id.in_(batch_ids))
                              .group_by(Generation.status)).all()
    counts = {status: count for status, count in rows}
    total = sum(counts.values())
    done = counts.get(Status.SUCCEEDED, 0)
    pending = counts.get(Status.QUEUED, 0) + counts.get(Status.RUNNING, 0)
    return Tally(done=done, failed=total - done - pending, total=total)


def progress_text(current: Tally, elapsed: float) -> str:
    """'[#########.....] 12/25 done, 1 failed, 0:42 elapsed'."""
    finished = current.done + current.failed
    filled = BAR_WIDTH * finished // current.total if current.total else BAR_WIDTH
    minutes, seconds = divmod(int(elapsed), 60)
    return (f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {current.done}/{current.total} done, "
            f"{current.failed} failed, {minutes}:{seconds:02d} elapsed")


class ProgressLine:
    """One line redrawn in place on a terminal; elsewhere (a log, a pipe) a new line whenever the counts change."""

    def __init__(self, interactive: bool) -> None:
        self.interactive = interactive
        self.last: Tally | None = None

    def show(self, current: Tally, elapsed: float) -> None:
        """Draw the latest state."""
        if self.interactive:
            click.echo("\r" + progress_text(current, elapsed), nl=False)
        elif current != self.last:
            click.echo(progress_text(current, elapsed))
        self.last = current

    def end(self) -> None:
        """Finish the redrawn line."""
        if self.interactive:
            click.echo()


def pause(seconds: float) -> None:
    """Wait between two looks at the database (tests replace it with a worker run)."""
    time.sleep(seconds)


def wait_for(batch_ids: list[int], show: Callable[[Tally, float], None], clock: Callable[[], float] = time.monotonic,
             interval: float = POLL_SECONDS) -> Tally:
    """Poll until nothing is queued or running, showing each look; return the final tally."""
    start = clock()
    while True:
        db.session.rollback()  # each look reads what the workers have committed since the last
        current = tally(batch_ids)
        show(current, clock() - start)
        if current.pending == 0:
            return current
        pause(interval)


def outcomes(batch_ids: list[int]) -> list[Generation]:
    """Every generation of the batches, in the order their prompts were given."""
    order = {batch_id: index for index, batch_id in enumerate(batch_ids)}
    generations = db.session.scalars(sa.select(Generation).where(Generation.batch_id.in_(batch_ids)))
    return sorted(generations, key=lambda g: (order[g.batch_id], g.position))


def saved_name(number: int, width: int, generation: Generation) -> str:
    """'007-a-red-fox.png': the prompt's number in the whole run, a few of its words, the file's real type."""
    return f"{number:0{width}d}-{prompt_slug(generation.prompt)}{file_extension(generation)}"


def save_images(generations: list[Generation], stores: Stores, out: Path) -> list[Path]:
    """Copy each finished image into `out` from its store (its prompt and settings are inside the file)."""
    out.mkdir(parents=True, exist_ok=True)
    width = max(3, len(str(len(generations))))
    saved = []
    for number, generation in enumerate(generations, start=1):
        if generation.status == Status.SUCCEEDED and generation.file_name:
            target = out / saved_name(number, width, generation)
            stored = stores.get(generation.storage).open(generation.file_name)
            try:
                with target.open("wb") as handle:
                    for chunk in stored.chunks():
                        handle.write(chunk)
            finally:
                stored.close()
            saved.append(target)
    return saved
