"""`flask generate`: batches made as the form makes them, split at MAX_PROMPTS_PER_BATCH, followed, saved."""

import re

import pytest
import sqlalchemy as sa
from conftest import drain
from factories import make_batch, make_user
from PIL import Image

from app.api import downloads
from app.api.downloads import ProgressLine, Tally, progress_text
from app.extensions import db
from app.models import Batch, Generation


@pytest.fixture
def worker_between_looks(monkeypatch):
    """Instead of sleeping between two looks at the database, run the queued jobs in this process."""
    def use(app):
        monkeypatch.setattr(downloads, "pause", lambda seconds: drain(app))
    return use


def prompt_file(tmp_path, lines):
    path = tmp_path / "prompts.txt"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def batches(app):
    with app.app_context():
        return [(b.id, len(b.generations)) for b in db.session.scalars(sa.select(Batch).order_by(Batch.id))]


def test_25_prompts_make_3_batches_show_progress_and_save_25_files(make_app, tmp_path, worker_between_looks):
    app = make_app(MAX_PROMPTS_PER_BATCH=10, PUBLIC_URL="https://images.example")
    worker_between_looks(app)
    lines = [f"lighthouse number {n}" for n in range(1, 26)]
    lines.insert(3, "   ")  # blank lines are skipped
    out = tmp_path / "out"
    result = app.test_cli_runner().invoke(args=["generate", "--file", str(prompt_file(tmp_path, lines)), "--wait",
                                                "--out", str(out), "--output-format", "png"])
    assert result.exit_code == 0, result.output
    assert "25 prompts are more than one batch may hold (MAX_PROMPTS_PER_BATCH=10): making 3 batches." in result.output
    made = batches(app)
    assert [size for _, size in made] == [10, 10, 5]
    for batch_id, _ in made:
        assert f"https://images.example/generate/{batch_id}" in result.output
    assert re.search(r"\[\.{30}\] 0/25 done, 0 failed, 0:\d\d elapsed", result.output)
    assert re.search(r"\[#{30}\] 25/25 done, 0 failed, 0:\d\d elapsed", result.output)
    files = sorted(path.name for path in out.iterdir())
    assert len(files) == 25
    assert (files[0], files[-1]) == ("001-lighthouse-number-1.png", "025-lighthouse-number-25.png")
    with Image.open(out / "007-lighthouse-number-7.png") as image:
        assert image.text["parameters"].startswith("lighthouse number 7")  # the stored file, metadata and all
    assert "Saved 25 images in" in result.output


def test_failures_exit_non_zero_with_each_reason(api_app, tmp_path, worker_between_looks):
    worker_between_looks(api_app)
    result = api_app.test_cli_runner().invoke(args=["generate", "a calm sea", "[moderate] a storm", "--wait",
                                                    "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "002 '[moderate] a storm': failed: Blocked by content moderation (not charged)" in result.output
    assert "1/2 done, 1 failed" in result.output
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["001-a-calm-sea.png"]


def test_the_forms_rules_apply_and_nothing_is_made_when_any_prompt_breaks_them(app, tmp_path):
    path = prompt_file(tmp_path, ["fine", "", "x" * 10001, "also\x01bad"])
    result = app.test_cli_runner().invoke(args=["generate", "first", "--file", str(path), "--model", "sdxl",
                                                "--seed", "many"])
    assert result.exit_code == 2
    assert "line 3: This is 10001 characters long; the limit is 10000." in result.output
    assert "line 4: Remove the invisible control character U+0001 at position 5." in result.output
    assert "model: Not a valid choice." in result.output
    assert "seed: Use a whole number from 0 to 4,294,967,294, or leave it empty." in result.output
    assert batches(app) == []


def test_options_reach_every_batch_and_without_wait_it_returns_at_once(app):
    result = app.test_cli_runner().invoke(args=["generate", "a fox", "--model", "sd3.5-flash", "--aspect-ratio",
                                                "9:16", "--cfg-scale", "2.5", "--seed", "11"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Batch \d+: 1 image queued for local@localhost, http://127\.0\.0\.1:5000/generate/\d+",
                     result.output)
    assert "done" not in result.output
    with app.app_context():
        generation = db.session.scalars(sa.select(Generation)).one()
        assert (generation.model, generation.aspect_ratio, generation.cfg_scale, generation.requested_seed) == (
            "sd3.5-flash", "9:16", 2.5, 11)


def test_with_accounts_the_user_is_required_and_spends_their_allowance(accounts_app):
    runner = accounts_app.test_cli_runner()
    assert "--user EMAIL" in runner.invoke(args=["generate", "a fox"]).output
    assert "No account" in runner.invoke(args=["generate", "a fox", "--user", "zed@example.com"]).output
    make_user(accounts_app, "ann@example.com", monthly_credits=4)
    assert runner.invoke(args=["generate", "a fox", "--user", "ann@example.com"]).exit_code == 0
    over = runner.invoke(args=["generate", "a fox", "--user", "ann@example.com"])
    assert over.exit_code == 1 and "costs 3 credits; you have 1 left" in over.output
    with accounts_app.app_context():
        assert {g.owner.email for g in db.session.scalars(sa.select(Generation))} == {"ann@example.com"}


def test_no_prompt_at_all_is_an_error(app, tmp_path):
    result = app.test_cli_runner().invoke(args=["generate", "--file", str(prompt_file(tmp_path, ["", "  "]))])
    assert result.exit_code != 0 and "at least one prompt" in result.output


def test_the_progress_line_redraws_in_place_on_a_terminal_and_logs_changes_elsewhere(capsys):
    states = [Tally(0, 0, 4), Tally(0, 0, 4), Tally(2, 1, 4), Tally(3, 1, 4)]
    log = ProgressLine(interactive=False)
    for state in states:
        log.show(state, 75.0)
    lines = capsys.readouterr().out.splitlines()
    assert lines == [progress_text(states[0], 75.0), progress_text(states[2], 75.0), progress_text(states[3], 75.0)]
    assert lines[-1] == "[" + "#" * 30 + "] 3/4 done, 1 failed, 1:15 elapsed"
    terminal = ProgressLine(interactive=True)
    for state in states:
        terminal.show(state, 1.0)
    terminal.end()
    assert capsys.readouterr().out.count("\r") == 4


def test_waiting_polls_until_nothing_is_pending(app, monkeypatch):
    batch_id, _ = make_batch(app, "a", "b")
    looks = []
    monkeypatch.setattr(downloads, "pause", lambda seconds: drain(app))
    with app.app_context():
        final = downloads.wait_for([batch_id], lambda tally, elapsed: looks.append(tally))
    assert looks == [Tally(0, 0, 2), Tally(2, 0, 2)] and final.pending == 0


def test_without_redis_nothing_is_made_and_the_message_says_what_to_run(make_app):
    app = make_app(REDIS_URL=None)
    result = app.test_cli_runner().invoke(args=["generate", "a red fox"])
    assert result.exit_code == 1 and "queued" not in result.output
    assert "REDIS_URL is not set" in result.output and "python3 scripts/run.py" in result.output
    assert batches(app) == []


def test_a_redis_that_does_not_answer_makes_nothing(make_app, tmp_path):
    app = make_app(REDIS_URL=f"unix://{tmp_path / 'gone.sock'}")
    result = app.test_cli_runner().invoke(args=["generate", "a red fox", "a blue heron"])
    assert result.exit_code == 1 and "queued" not in result.output
    assert "Redis does not answer at REDIS_URL" in result.output
    assert batches(app) == []


def test_a_batch_redis_refuses_after_the_check_never_says_queued(app, monkeypatch):
    from redis.exceptions import ConnectionError as RedisConnectionError

    def refused(*args, **kwargs):
        raise RedisConnectionError("Redis went away")

    monkeypatch.setattr("app.generations.queue.enqueue_job", refused)
    result = app.test_cli_runner().invoke(args=["generate", "a red fox", "a blue heron", "a grey owl"])
    assert result.exit_code == 1 and "queued" not in result.output
    assert "Redis took 0 of its 3 images; the others failed, their credits given back" in result.output
    with app.app_context():
        assert set(db.session.scalars(sa.select(Generation.status))) == {"failed"}
        assert set(db.session.scalars(sa.select(Generation.refunded))) == {True}


@pytest.mark.parametrize("command", [["queue", "status"], ["queue", "resume"], ["worker"]])
def test_queue_commands_without_redis_say_what_to_set(make_app, command):
    result = make_app(REDIS_URL=None).test_cli_runner().invoke(args=command)
    assert result.exit_code == 1 and "REDIS_URL is not set" in result.output
    assert "Traceback" not in result.output


def test_expand_and_a_grid_from_the_shell(app):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["generate", "a {red|blue} {fox|owl}", "--expand", "combinatorial"])
    assert result.exit_code == 0, result.output
    assert "4 images queued" in result.output
    result = runner.invoke(args=["generate", "a heron", "--grid-x", "model=core,sd3.5-flash",
                                 "--grid-y", "style_preset=anime,photographic"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        grid_batch = db.session.scalars(sa.select(Batch).order_by(Batch.id.desc())).first()
        assert grid_batch.grid["x"] == {"option": "model", "values": ["core", "sd3.5-flash"]}
        cells = [(g.cell, g.model, g.style_preset) for g in grid_batch.generations]
        assert cells[-1] == ({"x": 1, "y": 1}, "sd3.5-flash", "photographic") and len(cells) == 4


def test_a_wrong_grid_flag_is_explained(app):
    result = app.test_cli_runner().invoke(args=["generate", "a heron", "--grid-x", "model=core,sdxl"])
    assert result.exit_code == 2 and "grid.x.values: 'sdxl' is not a model" in result.output
    result = app.test_cli_runner().invoke(args=["generate", "a heron", "--grid-x", "model"])
    assert result.exit_code == 2 and "OPTION=VALUE1,VALUE2" in result.output
