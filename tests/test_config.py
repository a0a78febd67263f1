"""Configuration from the environment."""

import multiprocessing

import pytest

from app import create_app
from app.config import Config, local_secret_key, normalise_database_url


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


S3_VARIABLES = ("MEDIA_STORAGE", "S3_BUCKET", "S3_ENDPOINT_URL", "S3_REGION", "S3_PREFIX", "S3_URL_TTL", "S3_SERVE")


def test_media_storage_defaults_to_the_local_disk(monkeypatch, tmp_path):
    for name in S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    config = Config(str(tmp_path))
    assert (config.MEDIA_STORAGE, config.S3_BUCKET, config.S3_ENDPOINT_URL) == ("local", None, None)
    assert (config.S3_REGION, config.S3_PREFIX, config.S3_URL_TTL) == ("us-east-1", "", 300)
    assert config.S3_SERVE == "redirect"


def test_s3_settings_are_read_and_normalised(monkeypatch, tmp_path):
    for name, value in {"MEDIA_STORAGE": "S3", "S3_BUCKET": "my-images", "S3_ENDPOINT_URL": "http://127.0.0.1:8333/",
                        "S3_REGION": "eu-west-1", "S3_PREFIX": "/gen/images", "S3_URL_TTL": "60",
                        "S3_SERVE": "proxy"}.items():
        monkeypatch.setenv(name, value)
    config = Config(str(tmp_path))
    assert (config.MEDIA_STORAGE, config.S3_BUCKET, config.S3_ENDPOINT_URL) == ("s3", "my-images",
                                                                               "http://127.0.0.1:8333")
    assert (config.S3_REGION, config.S3_PREFIX, config.S3_URL_TTL, config.S3_SERVE) == ("eu-west-1", "gen/images/",
                                                                                       60, "proxy")


@pytest.mark.parametrize(("settings", "message"), [
    ({"MEDIA_STORAGE": "s3"}, "S3_BUCKET must be set when MEDIA_STORAGE=s3"),
    ({"MEDIA_STORAGE": "nfs"}, "MEDIA_STORAGE must be one of local, s3"),
    ({"S3_BUCKET": "My_Bucket"}, "S3_BUCKET must be a bucket name"),
    ({"S3_ENDPOINT_URL": "127.0.0.1:8333"}, "S3_ENDPOINT_URL must be an http:// or https:// URL"),
    ({"S3_ENDPOINT_URL": "http://127.0.0.1:port"}, "S3_ENDPOINT_URL has an invalid port"),
    ({"S3_REGION": "EU West"}, "S3_REGION must be a region name"),
    ({"S3_PREFIX": "a/../b"}, "S3_PREFIX must be a plain key prefix"),
    ({"S3_URL_TTL": "0"}, "S3_URL_TTL must be an integer of at least 1"),
    ({"S3_URL_TTL": "700000"}, "S3_URL_TTL must be at most 604800"),
    ({"S3_SERVE": "cdn"}, "S3_SERVE must be one of redirect, proxy"),
])
def test_bad_s3_settings_are_refused_with_the_variable_named(monkeypatch, tmp_path, settings, message):
    for name in S3_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in settings.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(RuntimeError, match=message):
        Config(str(tmp_path))


def _read_key(folder: str, start, results) -> None:  # noqa: ANN001
    start.wait()
    results.put(local_secret_key(folder))


@pytest.mark.processes
@pytest.mark.parametrize("round_", range(5))
def test_processes_starting_together_all_read_the_same_whole_secret_key(tmp_path, round_):
    context = multiprocessing.get_context("fork")
    start, results = context.Event(), context.Queue()
    processes = [context.Process(target=_read_key, args=(str(tmp_path), start, results)) for _ in range(8)]
    for process in processes:
        process.start()
    start.set()
    keys = [results.get(timeout=30) for _ in processes]
    for process in processes:
        process.join(30)
    assert len(set(keys)) == 1 and len(keys[0]) == 64


class ReadSettings(dict):
    """An environment that notes every name looked up in it."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, name, default=None):
        self.read.add(name)
        return super().get(name, default)


def test_every_setting_the_code_reads_is_in_the_readmes_table(monkeypatch, tmp_path):
    import os
    import pathlib
    import re

    environment = ReadSettings({})
    monkeypatch.setattr(os, "environ", environment)
    Config(str(tmp_path))
    readme = (pathlib.Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme[readme.index("## Configuration"):readme.index("\n## ", readme.index("## Configuration") + 1)]
    documented = set(re.findall(r"^\| (.+?) \|", table, re.MULTILINE))
    names = {name for row in documented for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row)}
    assert "TRUSTED_PROXIES" in environment.read
    assert environment.read - names == set()
