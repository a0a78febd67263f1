"""Configuration from the environment."""

import pytest

from app import create_app
from app.config import Config, normalise_database_url


@pytest.mark.parametrize(("given", "expected"), [
    ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
    ("postgresql://u@h:5432/db", "postgresql+psycopg://u@h:5432/db"),
    ("postgresql+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("sqlite:////tmp/x.db", "sqlite:////tmp/x.db"),
])
def test_database_urls_use_psycopg_3(given, expected):
    assert normalise_database_url(given) == expected


def test_defaults_apply_when_nothing_is_set(monkeypatch, tmp_path):
    for name in ("DATABASE_URL", "REDIS_URL", "STABILITY_API_KEY", "STABILITY_API_BASE_URL", "MEDIA_ROOT",
                 "WORKER_CONCURRENCY", "MAX_PROMPTS_PER_BATCH", "SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    config = Config(str(tmp_path))
    assert config.SQLALCHEMY_DATABASE_URI == f"sqlite:///{tmp_path / 'app.db'}"
    assert config.REDIS_URL is None and config.STABILITY_API_KEY is None
    assert config.STABILITY_API_BASE_URL == "https://api.stability.ai"
    assert config.MEDIA_ROOT == str(tmp_path / "media")
    assert config.WORKER_CONCURRENCY >= 8 and config.MAX_PROMPTS_PER_BATCH == 10


def test_bad_numbers_are_refused_with_the_variable_named(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKER_CONCURRENCY", "lots")
    with pytest.raises(RuntimeError, match="WORKER_CONCURRENCY must be an integer"):
        Config(str(tmp_path))


def test_a_deployment_without_secret_key_refuses_to_start(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.delenv("IMAGE_GENERATOR_LOCAL", raising=False)
    with pytest.raises(RuntimeError, match="SECRET_KEY must be set"):
        create_app(Config(str(tmp_path)))


def test_a_local_run_gets_a_random_secret_kept_in_the_instance_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("IMAGE_GENERATOR_LOCAL", "1")
    first = create_app(Config(str(tmp_path))).config["SECRET_KEY"]
    second = create_app(Config(str(tmp_path))).config["SECRET_KEY"]
    assert first == second and len(first) == 64
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
