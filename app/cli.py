"""Commands of the `flask` CLI: the worker, the queue's pause, accounts, API tokens, `flask generate`, `flask edit`
and media."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from redis import Redis

from app.generations import queue
from app.services import QueueUnavailable, services

queue_cli = AppGroup("queue", help="Inspect or resume the generation queue.")


def _redis() -> Redis:
    """The queue's Redis, answering; else a one-line error naming what to set, and exit 1."""
    try:
        return services().require_answering_redis()
    except QueueUnavailable as exc:
        raise click.ClickException(str(exc)) from None


@click.command("worker")
@with_appcontext
def worker_command() -> None:
    """Run the generation workers (WORKER_CONCURRENCY of them) until stopped, as `python worker.py` does."""
    from app.worker.pool import main

    _redis()
    main(current_app._get_current_object())  # type: ignore[attr-defined]


@queue_cli.command("resume")
def resume_command() -> None:
    """Let workers take jobs again after the queue paused (API key refused, or out of credits)."""
    if queue.resume(_redis()):
        click.echo("The queue was paused; workers take jobs again.")
    else:
        click.echo("The queue was not paused.")


@queue_cli.command("status")
def status_command() -> None:
    """Say whether the queue is paused, and how many jobs wait in it."""
    from rq import Queue

    redis = _redis()
    click.echo(queue.paused_reason(redis) or "Running.")
    names = queue.queue_names(redis, current_app.config["RQ_QUEUE_NAME"])
    click.echo(f"{sum(len(Queue(name, connection=redis)) for name in names)} jobs waiting in {len(names)} queues.")


def register(app: Flask) -> None:
    """Add the commands to `flask`."""
    from app.accounts.cli import users_cli
    from app.api.cli import edit_command, generate_command, tokens_cli
    from app.media.cli import export_command, media_cli

    app.cli.add_command(worker_command)
    app.cli.add_command(queue_cli)
    users_cli.add_command(export_command)  # `flask users export`: made in media/, which owns the ZIPs
    app.cli.add_command(users_cli)
    app.cli.add_command(tokens_cli)
    app.cli.add_command(generate_command)
    app.cli.add_command(edit_command)
    app.cli.add_command(media_cli)
