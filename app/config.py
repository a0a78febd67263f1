"""Configuration read from the environment, with safe defaults."""

import contextlib
import math
import os
import re
import secrets
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

from limits import parse_many

from app.providers.rate_limit import RateLimit, parse_rate_limit

DEFAULT_STABILITY_BASE_URL = "https://api.stability.ai"
# S3's rules for bucket names: 3-63 lower-case letters, digits, dots and hyphens.
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
REGION_NAME = re.compile(r"^[a-z0-9-]{1,32}$")
MAX_PRESIGN_SECONDS = 7 * 24 * 3600  # SigV4's longest validity
LOCAL_SECRET_FILE = "secret_key"  # in the instance folder: the secret key of local runs


def normalise_database_url(url: str) -> str:
    """Make postgres:// and postgresql:// URLs use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


class ConfigError(RuntimeError):
    """A setting with a value the app cannot use; raised at start-up, naming the variable."""


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    """Read a whole-number setting of at least `minimum`."""
    raw = _raw(name)
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer of at least {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be an integer of at least {minimum}, got {value}")
    return value


def _float_env(name: str, default: float, positive: bool = False) -> float:
    """Read a number of seconds (or similar): at least 0, or above 0 when `positive`."""
    raw = _raw(name)
    if not raw:
        return default
    accepts = "a number above 0" if positive else "a number of at least 0"
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be {accepts}, got {raw!r}") from None
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        raise ConfigError(f"{name} must be {accepts}, got {raw!r}")
    return value


def _timeout_env(name: str, default: tuple[float, float]) -> tuple[float, float]:
    """Read 'read' or 'connect,read' seconds, each above 0."""
    raw = _raw(name)
    if not raw:
        return default
    usage = f"{name} must be seconds above 0, as 'read' or 'connect,read' (such as 5,120), got {raw!r}"
    try:
        parts = [float(part) for part in raw.split(",")]
    except ValueError:
        raise ConfigError(usage) from None
    if len(parts) not in (1, 2) or not all(math.isfinite(part) and part > 0 for part in parts):
        raise ConfigError(usage)
    return (default[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])


def _rate_limit_env(name: str, default: str) -> RateLimit:
    """Read REQUESTS/SECONDS."""
    try:
        return parse_rate_limit(_raw(name) or default)
    except ValueError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _limit_env(name: str, default: str) -> str:
    """Read a Flask-Limiter rate such as 120/minute or "10 per second"."""
    raw = _raw(name) or default
    try:
        parse_many(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a rate such as 120/minute or 10 per second, got {raw!r}") from None
    return raw


def _optional_float_env(name: str) -> float | None:
    """Read an optional number of at least 0 (empty: not set)."""
    return _float_env(name, 0.0) if _raw(name) else None


def limiter_storage_uri(redis_url: str | None) -> str:
    """Flask-Limiter's name for the same Redis (its scheme for a unix socket differs), or memory without one."""
    if not redis_url:
        return "memory://"
    return "redis+unix://" + redis_url[len("unix://"):] if redis_url.startswith("unix://") else redis_url


def _flag_env(name: str) -> bool:
    """Read a yes/no setting: 1, true, yes or on; 0, false, no, off or empty."""
    raw = _raw(name).lower()
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("", "0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {raw!r}")


def _choice_env(name: str, default: str, choices: tuple[str, ...]) -> str:
    """Read one of a fixed set of words."""
    raw = _raw(name).lower() or default
    if raw not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _int_range_env(name: str, default: int, minimum: int, maximum: int) -> int:
    """Read a whole number between minimum and maximum."""
    value = _int_env(name, default, minimum)
    if value > maximum:
        raise ConfigError(f"{name} must be at most {maximum}, got {value}")
    return value


def _endpoint_env(name: str) -> str | None:
    """Read an optional http(s)://host[:port] URL."""
    raw = _raw(name)
    if not raw:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(f"{name} must be an http:// or https:// URL such as http://127.0.0.1:8333, got {raw!r}")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        raise ConfigError(f"{name} has an invalid port: {raw!r}") from None
    return raw.rstrip("/")


def _bucket_env(name: str, required: bool) -> str | None:
    """Read an S3 bucket name, which must be set when the app stores its files in S3."""
    raw = _raw(name)
    if not raw:
        if required:
            raise ConfigError(f"{name} must be set when MEDIA_STORAGE=s3")
        return None
    if not BUCKET_NAME.match(raw):
        raise ConfigError(f"{name} must be a bucket name (3-63 lower-case letters, digits, '.' or '-'), got {raw!r}")
    return raw


def _prefix_env(name: str) -> str:
    """Read a key prefix like 'images/' (a trailing slash is added; no leading slash, no '..')."""
    raw = _raw(name).strip("/")
    if not raw:
        return ""
    if ".." in raw.split("/") or any(ord(c) < 32 or c in "\\{}^%`[]<>~#|\"" for c in raw):
        raise ConfigError(f"{name} must be a plain key prefix such as images/, got {raw!r}")
    return raw + "/"


def _region_env(name: str, default: str) -> str:
    """Read an AWS region name such as eu-west-1."""
    raw = _raw(name) or default
    if not REGION_NAME.match(raw):
        raise ConfigError(f"{name} must be a region name such as us-east-1, got {raw!r}")
    return raw


def local_secret_key(instance_path: str) -> str:
    """Return the per-install random secret kept in the instance folder, creating it once."""
    path = Path(instance_path) / LOCAL_SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written whole to a private temp file, then linked into place: link() fails if the key exists, so
        # two processes starting together agree on one key, and nobody ever reads a half-written (empty) file.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".secret_key-")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


class Config:
    """Settings for a deployed or locally run app, from the environment."""

    TESTING = False
    # Prompts are at most 10 x 10,000 characters; nothing legitimate is bigger.
    MAX_CONTENT_LENGTH = 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    RQ_QUEUE_NAME = "generations"
    # JSON bodies nest at most this deep (the API's are 2 deep); the parser recurses once per level.
    JSON_MAX_DEPTH = 32
    # flask-smorest: the document is served by app/api/docs.py, so smorest registers no pages of its own.
    API_TITLE = "Image Generator API"
    API_VERSION = "1"
    OPENAPI_VERSION = "3.1.0"

    def __init__(self, instance_path: str) -> None:
        env = os.environ
        self.INSTANCE_PATH = instance_path
        self.SECRET_KEY = env.get("SECRET_KEY") or None
        self.LOCAL_RUN = _flag_env("IMAGE_GENERATOR_LOCAL")
        database_url = env.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'app.db'}"
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url)
        self.REDIS_URL = env.get("REDIS_URL") or None
        self.STABILITY_API_KEY = env.get("STABILITY_API_KEY") or None
        self.STABILITY_API_BASE_URL = env.get("STABILITY_API_BASE_URL") or DEFAULT_STABILITY_BASE_URL
        self.MEDIA_ROOT = env.get("MEDIA_ROOT") or str(Path(instance_path) / "media")
        self.MEDIA_STORAGE = _choice_env("MEDIA_STORAGE", "local", ("local", "s3"))
        # Credentials are never a setting of ours: boto3 reads its own chain (environment, profile, role).
        self.S3_BUCKET = _bucket_env("S3_BUCKET", required=self.MEDIA_STORAGE == "s3")
        self.S3_ENDPOINT_URL = _endpoint_env("S3_ENDPOINT_URL")
        self.S3_REGION = _region_env("S3_REGION", "us-east-1")
        self.S3_PREFIX = _prefix_env("S3_PREFIX")
        self.S3_URL_TTL = _int_range_env("S3_URL_TTL", 300, 1, MAX_PRESIGN_SECONDS)
        self.S3_SERVE = _choice_env("S3_SERVE", "redirect", ("redirect", "proxy"))
        self.MEDIA_STORE_ATTEMPTS = _int_env("MEDIA_STORE_ATTEMPTS", 3)
        self.MEDIA_STORE_RETRY_BASE_DELAY = _float_env("MEDIA_STORE_RETRY_BASE_DELAY", 1.0)
        self.WORKER_CONCURRENCY = _int_env("WORKER_CONCURRENCY", 8)
        # Slots are threads; a few processes (one per core by default) spread the CPU work of storing images.
        self.WORKER_PROCESSES = _int_env("WORKER_PROCESSES", min(os.cpu_count() or 1, self.WORKER_CONCURRENCY))
        self.WORKER_SHUTDOWN_GRACE = _float_env("WORKER_SHUTDOWN_GRACE", 30.0)
        # Jobs hold a connection only for short transactions, never while they wait for the API; the overflow
        # lets a busy worker process's threads and its housekeeper all write at once without queueing.
        self.SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 20}
        self.MAX_PROMPTS_PER_BATCH = _int_env("MAX_PROMPTS_PER_BATCH", 10)
        # The most images one batch may make, templates and grids expanded (each prompt × images × cells).
        self.MAX_IMAGES_PER_BATCH = _int_env("MAX_IMAGES_PER_BATCH", 100)
        self.DEMO_PROVIDER_DELAY = _float_env("DEMO_PROVIDER_DELAY", 2.0)
        self.GALLERY_PAGE_SIZE = _int_env("GALLERY_PAGE_SIZE", 24)
        # Links that show an image or a collection to people without an account; "off" turns them off for the install.
        self.SHARE_LINKS = _choice_env("SHARE_LINKS", "on", ("on", "off")) == "on"
        self.STABILITY_MAX_ATTEMPTS = _int_env("STABILITY_MAX_ATTEMPTS", 3)
        self.STABILITY_RETRY_BASE_DELAY = _float_env("STABILITY_RETRY_BASE_DELAY", 2.0)
        self.STABILITY_RATE_LIMIT = _rate_limit_env("STABILITY_RATE_LIMIT", "140/10")
        self.STABILITY_LOCKOUT_SECONDS = _float_env("STABILITY_LOCKOUT_SECONDS", 60.0, positive=True)
        self.STABILITY_TIMEOUT = _timeout_env("STABILITY_TIMEOUT", (5.0, 120.0))
        self.REAPER_STALE_SECONDS = _float_env("REAPER_STALE_SECONDS", 60.0, positive=True)
        # How often a waiting async operation (creative upscale, relight) is polled; the API asks for 10 s at least.
        # Each poll beats the row's heartbeat, so it must stay below REAPER_STALE_SECONDS.
        self.STABILITY_RESULT_POLL_SECONDS = _float_env("STABILITY_RESULT_POLL_SECONDS", 10.0)
        self.REAPER_INTERVAL_SECONDS = _float_env("REAPER_INTERVAL_SECONDS", 15.0, positive=True)
        # Images an account's deletion removes per step (their files first, then their rows in one commit).
        self.ACCOUNT_DELETION_CHUNK = _int_env("ACCOUNT_DELETION_CHUNK", 100)
        self.RQ_DASHBOARD_USERNAME = env.get("RQ_DASHBOARD_USERNAME") or None
        self.RQ_DASHBOARD_PASSWORD = env.get("RQ_DASHBOARD_PASSWORD") or None
        self.SESSION_COOKIE_SECURE = _flag_env("SESSION_COOKIE_SECURE")
        # A browser's session ends this long after its last request, and this long after signing in at the latest.
        self.SESSION_IDLE_MINUTES = _int_env("SESSION_IDLE_MINUTES", 120)
        self.SESSION_LIFETIME_HOURS = _float_env("SESSION_LIFETIME_HOURS", 24.0, positive=True)
        # Proxies in front of the app (load balancer, nginx) whose X-Forwarded-For and -Proto are believed.
        self.TRUSTED_PROXIES = _int_env("TRUSTED_PROXIES", 0, minimum=0)
        # Sign-in is off only for the operator's own machine (scripts/run.py on loopback).
        self.AUTH_MODE = _choice_env("AUTH_MODE", "none" if self.LOCAL_RUN else "accounts", ("accounts", "none"))
        self.DEFAULT_MONTHLY_CREDITS = _optional_float_env("DEFAULT_MONTHLY_CREDITS")
        self.MONTHLY_CREDIT_LIMIT = _optional_float_env("MONTHLY_CREDIT_LIMIT")
        self.PASSWORD_LINK_HOURS = _float_env("PASSWORD_LINK_HOURS", 72.0, positive=True)
        self.PUBLIC_URL = _raw("PUBLIC_URL") or "http://127.0.0.1:5000"
        # /metrics answers only `Authorization: Bearer <METRICS_TOKEN>`; unset, it is not served at all.
        self.METRICS_TOKEN = _raw("METRICS_TOKEN") or None
        self.LOG_FORMAT = _choice_env("LOG_FORMAT", "text", ("text", "json"))
        # Webhooks (app/webhooks/): private, loopback and link-local targets are refused unless this is set.
        self.WEBHOOK_ALLOW_PRIVATE = _flag_env("WEBHOOK_ALLOW_PRIVATE")
        self.WEBHOOK_TIMEOUT = _float_env("WEBHOOK_TIMEOUT", 5.0, positive=True)
        self.WEBHOOK_ATTEMPTS = _int_env("WEBHOOK_ATTEMPTS", 5)
        # Waits of 4, 8, 16 and 32 minutes: five attempts over about an hour.
        self.WEBHOOK_RETRY_BASE_DELAY = _float_env("WEBHOOK_RETRY_BASE_DELAY", 240.0)
        self.WEBHOOK_DISABLE_AFTER_HOURS = _float_env("WEBHOOK_DISABLE_AFTER_HOURS", 24.0, positive=True)
        # Requests per token (per user for a browser session) across the whole API.
        self.API_RATE_LIMIT = _limit_env("API_RATE_LIMIT", "120/minute")
        # Flask-Limiter keeps its counters (sign-in attempts, API requests) in the app's Redis.
        self.RATELIMIT_STORAGE_URI = limiter_storage_uri(self.REDIS_URL)
        self.RATELIMIT_KEY_PREFIX = "imagegen-limits"
        # A sliding window: "5 per 15 minutes" means any 15 minutes, not the clock's quarter hours.
        self.RATELIMIT_STRATEGY = "moving-window"
        # A Redis outage must not lock everyone out of signing in.
        self.RATELIMIT_SWALLOW_ERRORS = True


class TestConfig(Config):
    """Settings for the test suite: explicit, never read from a developer's .env by accident."""

    TESTING = True
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, instance_path: str, **overrides: object) -> None:
        super().__init__(instance_path)
        self.SECRET_KEY = "test-secret"
        self.AUTH_MODE = "none"
        self.DEFAULT_MONTHLY_CREDITS = None
        self.MONTHLY_CREDIT_LIMIT = None
        # Hashing at production cost would make every sign-in in the tests take a tenth of a second.
        self.ARGON2_PARAMS = {"time_cost": 1, "memory_cost": 1024, "parallelism": 1}
        self.DEMO_PROVIDER_DELAY = 0.0
        self.STABILITY_RETRY_BASE_DELAY = 0.05
        self.MEDIA_STORE_RETRY_BASE_DELAY = 0.05
        self.STABILITY_API_KEY = None
        self.RQ_DASHBOARD_USERNAME = None
        self.RQ_DASHBOARD_PASSWORD = None
        self.TRUSTED_PROXIES = 0
        self.MEDIA_STORAGE, self.S3_BUCKET, self.S3_ENDPOINT_URL, self.S3_PREFIX = "local", None, None, ""
        for key, value in overrides.items():
            setattr(self, key, value)
        if "REDIS_URL" in overrides:
            self.RATELIMIT_STORAGE_URI = limiter_storage_uri(self.REDIS_URL)
