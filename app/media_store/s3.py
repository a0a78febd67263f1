"""Files in an S3 bucket (AWS or an S3-compatible store): one thread-safe boto3 client per process."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote, urlsplit

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from werkzeug.http import dump_options_header

from app.media_store.base import FileMissing, StoredFile, StoreError, StoreUnavailable

# The key never names other bytes (names are random, a retry writes a new one), so a browser may keep it.
OBJECT_CACHE_CONTROL = "private, max-age=31536000, immutable"
MISSING_CODES = {"NoSuchKey", "NotFound", "404"}
TRANSIENT_CODES = {"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout", "RequestTimeTooSkewed"}
# Pages wait on these: fail within seconds when the store is down; the job retries on its own terms.
CONNECT_TIMEOUT = 3
READ_TIMEOUT = 30


def build_client(endpoint_url: str | None, region: str, pool_size: int = 32) -> Any:
    """An S3 client from boto3's standard credential chain (environment, profile, instance role)."""
    config = BotoConfig(
        signature_version="s3v4",
        # Non-AWS stores (SeaweedFS, MinIO, Ceph…) are addressed as endpoint/bucket/key; AWS as bucket.host/key.
        s3={"addressing_style": "path" if endpoint_url else "virtual"},
        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
        retries={"mode": "standard", "max_attempts": 2},
        max_pool_connections=pool_size,
        # Checksums only where S3 requires them: several S3-compatible stores reject the newer trailing ones.
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )
    # AWS through its regional endpoint: presigned URLs otherwise name the global one, which answers a
    # redirect to another origin than the one the page's img-src allows.
    endpoint = endpoint_url or f"https://s3.{region}.amazonaws.com"
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name=region, config=config)


def translate(exc: Exception, key: str) -> StoreError:
    """The store error a boto3 failure means: missing, worth retrying, or refused."""
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code in MISSING_CODES or status == 404:
            return FileMissing(key)
        if status >= 500 or code in TRANSIENT_CODES:
            return StoreUnavailable(f"S3 answered {status} {code} for {key}")
        return StoreError(f"S3 refused {key}: {status} {code}")
    if isinstance(exc, NoCredentialsError):
        return StoreError("no AWS credentials found (environment, profile or instance role)")
    return StoreUnavailable(f"S3 not reachable for {key}: {type(exc).__name__}")


class _Body:
    """An object's body whose read errors are store errors, like every other failure."""

    def __init__(self, body: Any, key: str) -> None:
        self.body, self.key = body, key

    def read(self, size: int = -1) -> bytes:
        try:
            return self.body.read(size if size >= 0 else None)
        except (BotoCoreError, OSError, ValueError) as exc:
            raise StoreUnavailable(f"reading {self.key} failed: {type(exc).__name__}") from exc

    def close(self) -> None:
        self.body.close()


def content_disposition(download_name: str) -> str:
    """An attachment header for any file name, as Flask's send_file writes it: ASCII, or a fallback plus UTF-8."""
    try:
        download_name.encode("ascii")
    except UnicodeEncodeError:
        fallback = unicodedata.normalize("NFKD", download_name).encode("ascii", "ignore").decode("ascii")
        names = {"filename": fallback, "filename*": f"UTF-8''{quote(download_name, safe='!#$&+-.^_`|~')}"}
    else:
        names = {"filename": download_name}
    return dump_options_header("attachment", names)


class S3Store:
    """One bucket, keys under a prefix; a browser may be sent to short-lived presigned URLs."""

    name = "s3"

    def __init__(self, client: Any, bucket: str, prefix: str = "", url_ttl: int = 300,
                 serve_directly: bool = True) -> None:
        self.client, self.bucket, self.prefix = client, bucket, prefix
        self.url_ttl, self.serve_directly = url_ttl, serve_directly

    def __repr__(self) -> str:
        return f"S3Store(bucket={self.bucket!r}, prefix={self.prefix!r})"

    def object_key(self, key: str) -> str:
        """The bucket key of one of our file names."""
        return self.prefix + key

    def _call(self, operation: str, key: str, **params: object) -> Any:
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **params)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc

    def put(self, key: str, data: bytes, content_type: str) -> None:
        """One PUT: S3 shows an object only once all of it has arrived."""
        self._call("put_object", key, Key=self.object_key(key), Body=data, ContentType=content_type,
                   CacheControl=OBJECT_CACHE_CONTROL)

    def open(self, key: str) -> StoredFile:
        """A GET whose body is read as it is streamed, never held whole."""
        answer = self._call("get_object", key, Key=self.object_key(key))
        return StoredFile(_Body(answer["Body"], key), int(answer["ContentLength"]))  # type: ignore[arg-type]

    def delete(self, key: str) -> None:
        """DELETE; S3 answers the same for a key that was never there."""
        self._call("delete_object", key, Key=self.object_key(key))

    def size(self, key: str) -> int | None:
        """HEAD the object."""
        try:
            return int(self._call("head_object", key, Key=self.object_key(key))["ContentLength"])
        except FileMissing:
            return None

    def url(self, key: str, content_type: str, download_name: str | None = None) -> str | None:
        """A presigned GET valid for S3_URL_TTL seconds (signed locally: no request), unless S3_SERVE=proxy."""
        if not self.serve_directly:
            return None
        params: dict[str, str] = {"Bucket": self.bucket, "Key": self.object_key(key)}
        if download_name:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        try:
            return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=self.url_ttl)
        except (BotoCoreError, ClientError) as exc:
            raise translate(exc, key) from exc

    def browser_origin(self) -> str:
        """The scheme and host presigned URLs point at, for the page's Content-Security-Policy."""
        try:
            url = self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self.object_key("origin")}, ExpiresIn=60)
        except BotoCoreError:
            # No credentials yet (pages will say the store is unavailable): the host the URLs would name.
            endpoint = urlsplit(self.client.meta.endpoint_url)
            virtual = self.client.meta.config.s3.get("addressing_style") == "virtual"
            host = f"{self.bucket}.{endpoint.netloc}" if virtual else endpoint.netloc
            return f"{endpoint.scheme}://{host}"
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def check(self) -> str:
        """HEAD the bucket."""
        try:
            self._call("head_bucket", "(bucket)")
        except FileMissing:
            return "no such bucket"
        except StoreUnavailable:
            return "unreachable"
        except StoreError as exc:
            return "no credentials" if "credentials" in str(exc) else "refused"
        return "ok"
