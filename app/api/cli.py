"""`flask tokens …` (personal access tokens from the shell), `flask generate` (batches from the shell) and `flask edit`
(a new image from one of yours)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import Field
from pathlib import Path
from typing import BinaryIO, NoReturn, TextIO

import click
from flask import current_app, url_for
from flask.cli import AppGroup, with_appcontext

from app.accounts import tokens
from app.accounts.users import AccountError, local_user, require_user
from app.api import downloads
from app.generations import edits, lifecycle, spending
from app.models import Status, User, utcnow
from app.prompts.submission import SUBMITTED_FIELDS, Submission, SubmissionInvalid, validate_submission
from app.providers.options import OPTION_FIELDS
from app.services import QueueUnavailable, services
from app.text.wording import count_of
from app.variations.templates import EXPAND_MODES

tokens_cli = AppGroup("tokens", help="Make, list and revoke API tokens.")


def _fail(message: str) -> NoReturn:
    raise click.ClickException(message)


def _user(email: str) -> User:
    try:
        return require_user(email)
    except AccountError as exc:
        _fail(str(exc))


@tokens_cli.command("create")
@click.argument("email")
@click.argument("name")
@click.option("--expires-days", type=int, help="Days until it stops working (default: never).")
def create_token_command(email: str, name: str, expires_days: int | None) -> None:
    """Make a token for EMAIL named NAME and print its secret, once."""
    try:
        new = tokens.create_token(_user(email), name, expires_days)
    except tokens.TokenError as exc:
        _fail(str(exc))
    expiry = f"expires {new.token.expires_at:%Y-%m-%d %H:%M} UTC" if new.token.expires_at else "never expires"
    click.echo(f"Token {new.token.name!r} for {email} ({expiry}). It is shown only now:", err=True)
    click.echo(new.secret)


@tokens_cli.command("revoke")
@click.argument("email")
@click.argument("name")
def revoke_token_command(email: str, name: str) -> None:
    """Revoke EMAIL's live token named NAME."""
    token = tokens.live_token(_user(email), name.strip())
    if token is None:
        _fail(f"{email} has no live token named {name!r}.")
    tokens.revoke(token)
    click.echo(f"Revoked {name!r} of {email}.")


@tokens_cli.command("list")
@click.argument("email")
def list_tokens_command(email: str) -> None:
    """EMAIL's tokens: name, prefix, state and last use."""
    now = utcnow()
    for token in tokens.user_tokens(_user(email)):
        state = "revoked" if token.revoked_at else ("active" if token.is_live(now) else "expired")
        used = f"{token.last_used_at:%Y-%m-%d %H:%M} UTC" if token.last_used_at else "never used"
        click.echo(f"{token.name}\t{token.prefix}…\t{state}\t{used}")


# --- flask generate ------------------------------------------------------------------------------

def _prompts(arguments: tuple[str, ...], prompt_file: TextIO | None) -> list[tuple[str, str]]:
    """(where it came from, text) of every non-blank prompt: the arguments first, then the file's lines."""
    found = [(f"prompt {number}", text) for number, text in enumerate(arguments, start=1)]
    if prompt_file is not None:
        found += [(f"line {number}", line.rstrip("\r\n")) for number, line in enumerate(prompt_file, start=1)]
    return [(label, text) for label, text in found if text.strip()]


def _owner(email: str | None) -> User:
    """--user, or the local user in AUTH_MODE=none."""
    if email is not None:
        user = _user(email)
        if user.disabled:
            _fail(f"{user.email} is disabled.")
        return user
    if current_app.config["AUTH_MODE"] == "accounts":
        _fail("Say whose batches these are with --user EMAIL (AUTH_MODE=accounts).")
    return local_user()


def _submissions(prompts: list[tuple[str, str]], options: dict[str, str | None],
                 owner: User | None = None) -> list[Submission]:
    """The prompts in batches of at most MAX_PROMPTS_PER_BATCH, each checked by the form's rules (templates read
    the owner's wildcard lists)."""
    size = current_app.config["MAX_PROMPTS_PER_BATCH"]
    chunks = [prompts[start:start + size] for start in range(0, len(prompts), size)]
    submissions, problems = [], {}
    for chunk in chunks:
        try:
            submissions.append(validate_submission([text for _, text in chunk], options, size,
                                                   label=lambda index, chunk=chunk: chunk[index][0], owner=owner,
                                                   max_images=current_app.config["MAX_IMAGES_PER_BATCH"]))
        except SubmissionInvalid as exc:
            problems.update(exc.fields)  # an option's message is the same in every chunk: shown once
    if problems:
        for name, message in problems.items():
            click.echo(f"{name.replace('_', '-')}: {message}", err=True)
        raise click.exceptions.Exit(2)
    if len(chunks) > 1:
        click.echo(f"{len(prompts)} prompts are more than one batch may hold (MAX_PROMPTS_PER_BATCH={size}): "
                   f"making {len(chunks)} batches.")
    return submissions


@contextmanager
def _public_urls() -> Iterator[None]:
    """url_for builds links on PUBLIC_URL, as a shell has no request to take the host from."""
    with current_app.test_request_context(base_url=current_app.config["PUBLIC_URL"]):
        yield


def _require_queue() -> None:
    """Refuse before anything is created when nothing could be queued (no Redis, or one that does not answer)."""
    try:
        services().require_answering_redis()
    except QueueUnavailable as exc:
        _fail(f"Nothing was made. {exc}.")


def _create(owner: User, submissions: list[Submission]) -> list[int]:
    """Create the batches one by one, printing each one's page; stop at the first over the allowance."""
    batch_ids: list[int] = []
    for submission in submissions:
        try:
            batch = lifecycle.create_batch(owner, submission.prompts, submission.options,
                                           **submission.batch_arguments())
        except spending.OverAllowance as exc:
            made = f" ({len(batch_ids)} batches were made before it)" if batch_ids else ""
            click.echo(f"Stopped: {exc}{made}", err=True)
            raise click.exceptions.Exit(1) from None
        batch_ids.append(batch.id)
        _say_queued(batch.id, owner)
    return batch_ids


def _say_queued(batch_id: int, owner: User) -> None:
    """Print how many of the batch's images are queued, for whom, and its page; exit 1 if Redis took none."""
    generations = downloads.outcomes([batch_id])
    queued = sum(1 for g in generations if g.error != lifecycle.QUEUE_DOWN)
    with _public_urls():
        page = url_for("batches.show", batch_id=batch_id, _external=True)
    if queued < len(generations):
        click.echo(f"Batch {batch_id}: Redis took {queued} of its {count_of(len(generations), 'image')}; the others "
                   f"failed, their credits given back: {lifecycle.QUEUE_DOWN} {page}", err=True)
        raise click.exceptions.Exit(1)
    click.echo(f"Batch {batch_id}: {count_of(queued, 'image')} queued for {owner.email}, {page}")


def _report(batch_ids: list[int], out: Path | None) -> int:
    """Say why each image that did not succeed failed, save the rest if asked; the exit status."""
    generations = downloads.outcomes(batch_ids)
    failed = [(number, g) for number, g in enumerate(generations, start=1) if g.status != Status.SUCCEEDED]
    for number, generation in failed:
        reason = generation.error or generation.status
        support = f" (support id {generation.api_error_id})" if generation.api_error_id else ""
        click.echo(f"{number:03d} {generation.prompt[:60]!r}: {generation.status}: {reason}{support}", err=True)
    if out is not None:
        saved = downloads.save_images(generations, services().stores, out)
        click.echo(f"Saved {count_of(len(saved), 'image')} in {out}/")
    return 1 if failed else 0


def _flag_help(option: Field) -> str:
    """What an option's flag takes, from its declaration."""
    facts = option.metadata
    parts = []
    if facts["choices"]:
        parts.append(", ".join(facts["choices"]))
    if facts["bounds"]:
        parts.append(f"{facts['bounds'][0]:g} to {facts['bounds'][1]:g}")
    if option.default is not None:
        parts.append(f"default {option.default}")
    if facts["doc"]:
        parts.append(facts["doc"])
    return "; ".join(parts) + "." if parts else ""


def option_flags(command: Callable) -> Callable:
    """One --flag per option GenerationOptions declares, in its order."""
    for option in reversed(OPTION_FIELDS):
        command = click.option("--" + option.name.replace("_", "-"), help=_flag_help(option))(command)
    return command


def _axis(_context: click.Context, parameter: click.Parameter, value: str | None) -> tuple[str, str] | None:
    """--grid-x model=core,sd3.5-flash as (option, values as the form's field takes them)."""
    if value is None:
        return None
    option, equals, values = value.partition("=")
    if not equals or not option.strip():
        raise click.BadParameter("write it as OPTION=VALUE1,VALUE2 (such as model=core,sd3.5-flash)",
                                 param=parameter)
    return option.strip(), values


@click.command("generate")
@with_appcontext
@click.argument("prompts", nargs=-1)
@click.option("--file", "prompt_file", type=click.File(encoding="utf-8"),
              help="One prompt per line (blank lines skipped); - reads standard input.")
@option_flags
@click.option("--images-per-prompt", help="1 to 4 (default 1); a given seed counts up by one per image.")
@click.option("--expand", type=click.Choice(EXPAND_MODES),
              help="Prompt templates ({a|b}, __list__): none (default), combinatorial or random.")
@click.option("--samples", help="Random picks per template with --expand random (default 4).")
@click.option("--grid-x", callback=_axis, help="A comparison grid's X axis: OPTION=V1,V2 (OPTION: model, "
              "style_preset, aspect_ratio, seed, cfg_scale, negative_prompt or prompt_sr).")
@click.option("--grid-y", callback=_axis, help="Its Y axis, as --grid-x.")
@click.option("--grid-z", callback=_axis, help="Its Z axis (one grid per value), as --grid-x.")
@click.option("--user", "email", help="Whose batches (required with AUTH_MODE=accounts).")
@click.option("--wait", is_flag=True, help="Show progress until every image is final.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Save the images here as NNN-<prompt words>.<ext> (implies --wait).")
def generate_command(prompts: tuple[str, ...], prompt_file: TextIO | None, email: str | None, wait: bool,
                     out: Path | None, **option_values: str | None) -> None:
    """Queue images for PROMPTS (and --file), checked by the home form's rules; print each batch's page."""
    given = _prompts(prompts, prompt_file)
    if not given:
        _fail("Give at least one prompt, as arguments or with --file.")
    for axis in ("x", "y", "z"):
        option_values[f"grid_{axis}_option"], option_values[f"grid_{axis}_values"] = \
            option_values.pop(f"grid_{axis}") or (None, None)
    options = {name: option_values.get(name) for name in SUBMITTED_FIELDS}
    owner = _owner(email)
    submissions = _submissions(given, options, owner)
    _require_queue()
    batch_ids = _create(owner, submissions)
    if wait or out:
        _wait_and_report(batch_ids, out)


def _wait_and_report(batch_ids: list[int], out: Path | None) -> NoReturn:
    """Show progress until every image is final, then say what failed and save the rest if asked; exit."""
    line = downloads.ProgressLine(interactive=sys.stdout.isatty())
    try:
        downloads.wait_for(batch_ids, line.show)
    except KeyboardInterrupt:
        line.end()
        click.echo("Stopped waiting; the batches carry on without you.", err=True)
        raise click.exceptions.Exit(130) from None
    line.end()
    raise click.exceptions.Exit(_report(batch_ids, out))


# --- flask edit ----------------------------------------------------------------------------------

def _edit_fields(prompt: str | None, pairs: tuple[str, ...]) -> dict[str, str]:
    """--prompt and every --set FIELD=VALUE, as the operation's fields."""
    params = {"prompt": prompt} if prompt is not None else {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            _fail(f"--set takes FIELD=VALUE, such as left=256; not {pair!r}.")
        params[name.strip()] = value
    return params


@click.command("edit")
@with_appcontext
@click.argument("image_id", type=int)
@click.argument("operation")
@click.option("--prompt", help="The prompt, for the operations that take one (vary keeps the image's own).")
@click.option("--set", "pairs", multiple=True, metavar="FIELD=VALUE",
              help="Another field of the operation, named as the Stability API names it (repeatable): "
                   "--set left=256 --set creativity=0.4.")
@click.option("--mask", type=click.File("rb"), help="inpaint and erase: a PNG of the image's size, white is changed.")
@click.option("--user", "email", help="Whose image (required with AUTH_MODE=accounts).")
@click.option("--wait", is_flag=True, help="Show progress until the new image is final.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Save the new image here (implies --wait).")
def edit_command(image_id: int, operation: str, prompt: str | None, pairs: tuple[str, ...], mask: BinaryIO | None,
                 email: str | None, wait: bool, out: Path | None) -> None:
    """Make a new image from IMAGE_ID with OPERATION (upscale-fast, inpaint, outpaint, …, or the shortcuts vary and
    upscale), its limits checked before any credit is spent; print the batch's page."""
    owner, params = _owner(email), _edit_fields(prompt, pairs)
    _require_queue()
    try:
        batch = edits.create_edit_batch(owner, [image_id], operation, params, mask.read() if mask else None)
    except edits.SourceNotFound:
        _fail(f"Image {image_id} is not a finished image of {owner.email}.")
    except edits.EditRefused as exc:
        click.echo(f"{(exc.field or 'image').replace('_', '-')}: {exc.message} Nothing was made or charged.",
                   err=True)
        raise click.exceptions.Exit(2) from None
    except spending.OverAllowance as exc:
        _fail(f"Nothing was made: {exc}")
    _say_queued(batch.id, owner)
    if wait or out:
        _wait_and_report([batch.id], out)
