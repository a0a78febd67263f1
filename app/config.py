"""Configuration read from the environment, with safe defaults."""

import os
import secrets
from pathlib import Path

DEFAULT_STABILITY_BASE_URL = "https://api.stability.ai"


def normalise_database_url(url: str) -> str:
    """Make postgres:// and postgresql:// URLs use the psycopg 3 driver."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _int_env(name: str, default: int, minimum: int = 1) -> int:
    """Read a positive integer setting, refusing nonsense with a clear message."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise RuntimeError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise RuntimeError(f"{name} must be at least {minimum}, got {value}")
    return value


def _float_env(name: str, default: float) -> float:
    """Read a non-negative float setting."""
    raw = os.environ.get(name, "").strip()
    try:
        return max(0.0, float(raw)) if raw else default
    except ValueError:
        raise RuntimeError(f"{name} must be a number, got {raw!r}") from None


def _timeout_env(name: str, default: tuple[float, float]) -> tuple[float, float]:
    """Read 'read' or 'connect,read' seconds."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        parts = [float(part) for part in raw.split(",")]
    except ValueError:
        raise RuntimeError(f"{name} must be seconds, as 'read' or 'connect,read', got {raw!r}") from None
    if len(parts) == 1:
        return (default[0], parts[0])
    if len(parts) == 2 and min(parts) > 0:
        return (parts[0], parts[1])
    raise RuntimeError(f"{name} must be seconds, as 'read' or 'connect,read', got {raw!r}")


def local_secret_key(instance_path: str) -> str:
    """Return the per-install random secret kept in the instance folder, creating it once."""
    path = Path(instance_path) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # O_EXCL so two processes starting together cannot write different keys.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip()


class Config:
    """Settings for a deployed or locally run app, from the environment."""

    TESTING = False
    SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}
    # Prompts are at most 10 x 10,000 characters; nothing legitimate is bigger.
    MAX_CONTENT_LENGTH = 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    RQ_QUEUE_NAME = "generations"

    def __init__(self, instance_path: str) -> None:
        env = os.environ
        self.INSTANCE_PATH = instance_path
        self.SECRET_KEY = env.get("SECRET_KEY") or None
        self.LOCAL_RUN = env.get("IMAGE_GENERATOR_LOCAL") == "1"
        database_url = env.get("DATABASE_URL") or f"sqlite:///{Path(instance_path) / 'app.db'}"
        self.SQLALCHEMY_DATABASE_URI = normalise_database_url(database_url)
        self.REDIS_URL = env.get("REDIS_URL") or None
        self.STABILITY_API_KEY = env.get("STABILITY_API_KEY") or None
        self.STABILITY_API_BASE_URL = env.get("STABILITY_API_BASE_URL") or DEFAULT_STABILITY_BASE_URL
        self.MEDIA_ROOT = env.get("MEDIA_ROOT") or str(Path(instance_path) / "media")
        self.WORKER_CONCURRENCY = _int_env("WORKER_CONCURRENCY", 8)
        self.MAX_PROMPTS_PER_BATCH = _int_env("MAX_PROMPTS_PER_BATCH", 10)
        self.DEMO_PROVIDER_DELAY = _float_env("DEMO_PROVIDER_DELAY", 2.0)
        self.GALLERY_PAGE_SIZE = _int_env("GALLERY_PAGE_SIZE", 24)
        self.STABILITY_MAX_ATTEMPTS = _int_env("STABILITY_MAX_ATTEMPTS", 3)
        self.STABILITY_RETRY_BASE_DELAY = _float_env("STABILITY_RETRY_BASE_DELAY", 2.0)
        self.STABILITY_RATE_LIMIT = env.get("STABILITY_RATE_LIMIT") or "140/10"
        self.STABILITY_LOCKOUT_SECONDS = _float_env("STABILITY_LOCKOUT_SECONDS", 60.0)
        self.STABILITY_TIMEOUT = _timeout_env("STABILITY_TIMEOUT", (5.0, 120.0))
        self.RQ_DASHBOARD_USERNAME = env.get("RQ_DASHBOARD_USERNAME") or None
        self.RQ_DASHBOARD_PASSWORD = env.get("RQ_DASHBOARD_PASSWORD") or None
        self.SESSION_COOKIE_SECURE = env.get("SESSION_COOKIE_SECURE") == "1"


class TestConfig(Config):
    """Settings for the test suite: explicit, never read from a developer's .env by accident."""

    TESTING = True
    __test__ = False  # not a pytest test class, whatever its name

    def __init__(self, instance_path: str, **overrides: object) -> None:
        super().__init__(instance_path)
        self.SECRET_KEY = "test-secret"
        self.DEMO_PROVIDER_DELAY = 0.0
        self.STABILITY_RETRY_BASE_DELAY = 0.05
        self.STABILITY_API_KEY = None
        self.RQ_DASHBOARD_USERNAME = None
        self.RQ_DASHBOARD_PASSWORD = None
        for key, value in overrides.items():
            setattr(self, key, value)
