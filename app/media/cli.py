"""`flask media`: move an install's files between the local disk and S3, and create the bucket; and `flask users
export`, which writes an account's export."""

from __future__ import annotations

import os
import time
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from app.accounts.users import AccountError, require_user
from app.media import moving
from app.media.export import MANIFEST, AccountExport
from app.media_store.base import StoreError
from app.services import services
from app.text.wording import count_of

media_cli = AppGroup("media", help="Move image files between stores.")


@media_cli.command("migrate")
@click.option("--to", "target", type=click.Choice(["s3", "local"]), required=True, help="the store to move to")
@click.option("--dry-run", is_flag=True, help="say what would be copied, change nothing")
@click.option("--delete-source", is_flag=True, help="delete each file from its old store once its row is switched")
def migrate_command(target: str, dry_run: bool, delete_source: bool) -> None:
    """Copy every image and thumbnail to the other store, check size and hash, switch the rows; rerun to resume."""
    stores = services().stores
    try:
        stores.get(target)
    except StoreError:
        raise click.ClickException("S3_BUCKET is not set: the S3 store is not configured") from None
    total = moving.count_to_move(target)
    verb = "Would move" if dry_run else "Moving"
    click.echo(f"{verb} {count_of(total, 'image')} to {target}.")
    report = moving.MoveReport()
    try:
        with click.progressbar(moving.rows_to_move(target), length=total, label="images",
                               show_pos=True) as rows:
            for row in rows:
                moving.move_row(stores, row, target, dry_run, report, delete_source=delete_source)
    except StoreError as exc:
        _summary(report, target, dry_run)
        raise click.ClickException(f"stopped: {exc}. Run the command again to resume.") from None
    _summary(report, target, dry_run)
    if report.missing:
        raise SystemExit(1)


def _summary(report: moving.MoveReport, target: str, dry_run: bool) -> None:
    """Print what was done or would be done."""
    megabytes = report.bytes_copied / 1_000_000
    if dry_run:
        click.echo(f"Would copy {report.copied} files ({megabytes:.1f} MB) for {report.images} images; "
                   f"{report.already_there} files already in {target} (same size). Nothing was changed.")
    else:
        click.echo(f"Moved {report.images} images to {target}: copied {report.copied} files ({megabytes:.1f} MB), "
                   f"{report.already_there} already there, each checked by size and SHA-256.")
        if report.changed_meanwhile:
            click.echo(f"{report.changed_meanwhile} images changed while being copied and were left to their new "
                       "attempt.")
    if report.missing:
        shown = ", ".join(str(i) for i in report.missing[:20])
        click.echo(f"{len(report.missing)} images have a missing file and were left as they are: {shown}", err=True)


@media_cli.command("create-bucket")
def create_bucket_command() -> None:
    """Create S3_BUCKET if it does not exist (a fresh store may take a few seconds to accept it)."""
    s3 = services().stores.s3
    if s3 is None:
        raise click.ClickException("S3_BUCKET is not set")
    for _ in range(15):
        if s3.check() == "ok":
            click.echo(f"Bucket {s3.bucket} is ready.")
            return
        try:
            s3.client.create_bucket(Bucket=s3.bucket, **_location(current_app.config["S3_REGION"]))
        except Exception:  # noqa: BLE001  (a store still electing its master refuses anything; retried)
            time.sleep(1)
    raise click.ClickException(f"could not create bucket {s3.bucket}; is the store at S3_ENDPOINT_URL running?")


def _location(region: str) -> dict[str, object]:
    """AWS wants a location constraint outside us-east-1."""
    return {} if region == "us-east-1" else {"CreateBucketConfiguration": {"LocationConstraint": region}}


@click.command("export")
@with_appcontext
@click.argument("email")
@click.option("--out", type=click.Path(dir_okay=False, writable=True, path_type=Path),
              help="The ZIP to write (default: export-<email>-<date>.zip here)")
def export_command(email: str, out: Path | None) -> None:
    """Write everything an account made to a ZIP: every image file, and manifest.json describing each one."""
    try:
        export = AccountExport(require_user(email), services().stores)
    except AccountError as exc:
        raise click.ClickException(str(exc)) from None
    out = out or Path(export.download_name.replace("image-generator-export", f"export-{email.strip().lower()}"))
    partial = out.with_name(out.name + ".part")  # only a whole export ever carries the name asked for
    try:
        with partial.open("wb") as target:
            for chunk in export.chunks():
                target.write(chunk)
    except StoreError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"the image store failed ({exc}); nothing was written. Try again.") from None
    os.replace(partial, out)
    click.echo(f"Wrote {out}: {count_of(len(export.written), 'image file')} and {MANIFEST}.")
