"""scripts/run.py: gunicorn as production runs it (Flask's server only with --debug); and, started in a fresh copy of
the repository, every `flask …` line of the README works in a second terminal beside it with nothing set by hand,
its terminal shows one line per request and per image, and once it stops the CLI says what to set."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from itertools import dropwhile
from pathlib import Path
from urllib.error import HTTPError

import pytest

from app.processes.group import ProcessGroup, free_port

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
import run  # noqa: E402

README = ROOT / "README.md"
PASSWORD = "a long enough password"
PROMPTS = ("a lighthouse at dawn", "a lighthouse in fog")  # prompts.txt, which a README line reads
FENCE = re.compile(r"^[ \t]*```bash\n(.*?)^[ \t]*```", re.S | re.M)
ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=.*")
OPTIONAL = re.compile(r"\s*\[([^\]]+)\]")  # "[--user you@example.com]": an option the README marks optional
# What a line needs on its standard input.
STDIN = {"flask users create you@example.com --admin": f"{PASSWORD}\n{PASSWORD}\n",
         "flask users delete ann@example.com": "y\n"}
# How a line ends when not with status 0, per sign-in mode: its exit status and what its output says.
EXPECTED = {
    ("accounts", "flask generate 'a red fox' 'a blue heron' --model sd3.5-large --aspect-ratio 16:9"):
        (1, "Say whose batches these are with --user EMAIL"),
    ("none", "flask users delete ann@example.com"): (1, "nothing to delete"),
}
# Lines not run here, and why.
SKIPPED = {"flask media": "needs an S3 store: tests/test_media_migrate.py runs `flask media` against a real "
                          "SeaweedFS",
           "flask edit": "names an image of the reader's own (12): tests/test_api_edits.py runs `flask edit` on "
                         "real images"}
BANNER = "Press Ctrl-C to stop."
ACCESS_LINE = re.compile(r"(GET|POST|HEAD|PUT|DELETE|PATCH) /\S* \d{3} \d+ ms")


def test_the_one_command_serves_with_gunicorn_on_loopback_with_the_production_settings():
    args = run.web_server_args(5000, debug=False)
    assert args[:2] == ["-m", "gunicorn"]
    assert "python:app.gunicorn_config" in args
    assert args[args.index("--bind") + 1] == "127.0.0.1:5000"
    assert "--no-control-socket" in args and args[args.index("--access-logfile") + 1] == "-"


def test_debug_asks_for_flasks_development_server_with_the_reloader():
    args = run.web_server_args(5001, debug=True)
    assert args[:4] == ["-m", "flask", "--app", "wsgi"] and "--debug" in args
    assert args[args.index("--host") + 1] == "127.0.0.1"


# --- the README beside a real local run ---------------------------------------------------------------------

@dataclass(frozen=True)
class ReadmeLine:
    """A `flask …` line of one of the README's bash blocks."""

    number: int  # where it starts in README.md
    text: str  # as shown, continuation lines joined

    def shell_text(self, mode: str) -> str:
        """The line as typed: its optional parts left out, except where the sign-in mode needs them."""
        return OPTIONAL.sub(lambda m: f" {m.group(1)}" if mode == "accounts" else "", self.text)

    def key(self, mode: str) -> str:
        """The command itself, without variables set before it, its comment or the path to the venv."""
        words = list(dropwhile(ASSIGNMENT.fullmatch, shlex.split(self.shell_text(mode), comments=True)))
        return shlex.join(["flask", *words[1:]])


def readme_flask_lines() -> list[ReadmeLine]:
    """Every line of a bash block in README.md whose command is flask (or .venv/bin/flask)."""
    text = README.read_text(encoding="utf-8")
    found = []
    for block in FENCE.finditer(text):
        number = text.count("\n", 0, block.start(1)) + 1
        pending, start = "", number
        for offset, line in enumerate(block.group(1).splitlines()):
            pending, start = (pending + line, start) if pending else (line, number + offset)
            if pending.endswith("\\"):
                pending = pending[:-1]
                continue
            words = list(dropwhile(ASSIGNMENT.fullmatch, shlex.split(pending, comments=True)))
            if words and Path(words[0]).name == "flask":
                found.append(ReadmeLine(start, pending))
            pending = ""
    return found


@dataclass
class Outcome:
    """What one README line did beside the run (or why it was not run)."""

    line: ReadmeLine
    key: str
    skipped: str | None = None
    status: int | None = None
    output: str = ""


@dataclass
class LocalRun:
    """A fresh copy of the repository, `python3 scripts/run.py` in it, and what was seen beside it."""

    mode: str
    tmp: Path
    port: int = field(default_factory=free_port)
    outcomes: list[Outcome] = field(default_factory=list)
    after_stop: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    facts: dict[str, object] = field(default_factory=dict)

    @property
    def copy(self) -> Path:
        return self.tmp / "copy"

    @property
    def home(self) -> Path:
        return self.tmp / "home"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> str:
        return (self.tmp / "run.log").read_text(errors="replace")

    def make_copy(self) -> None:
        """The repository's files as git knows them (with their changes), and the installed virtualenv."""
        listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
        for name in filter(None, listed.decode().split("\0")):
            if (ROOT / name).is_file():
                (self.copy / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, self.copy / name)
        # The packages requirements.txt names, already installed: bootstrap() finds them instead of downloading.
        (self.copy / ".venv").symlink_to(Path(sys.prefix).resolve())
        (self.copy / "prompts.txt").write_text("\n".join(PROMPTS) + "\n")
        self.home.mkdir()

    def terminal_environment(self) -> dict[str, str]:
        """A second terminal's: its PATH, with the virtualenv activated, and nothing the app reads."""
        return {"PATH": f"{self.copy / '.venv' / 'bin'}:{os.environ['PATH']}", "HOME": str(self.home),
                "LANG": "C.UTF-8"}

    def start(self) -> ProcessGroup:
        """`python3 scripts/run.py` as the README starts it (PORT free, quick demo images); wait for its banner."""
        env = {**self.terminal_environment(), "PORT": str(self.port), "DEMO_PROVIDER_DELAY": "0.2",
               "WORKER_CONCURRENCY": "2", **({"AUTH_MODE": "accounts"} if self.mode == "accounts" else {})}
        group = ProcessGroup("scripts/run.py", ["python3", "scripts/run.py"], env=env, cwd=self.copy,
                             log=self.tmp / "run.log").start()
        group.wait_until(lambda: BANNER in self.log, "scripts/run.py's banner", timeout=240)
        return group

    def shell(self, text: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """Run a line in the second terminal, in the copy."""
        # A session of its own: no controlling terminal, so a password prompt reads what the test types.
        return subprocess.run(["bash", "-c", text], cwd=self.copy, env=self.terminal_environment(), input=stdin,
                              capture_output=True, text=True, timeout=180, check=False, start_new_session=True)

    def run_readme(self) -> None:
        """Every flask line of the README, in its order, each command once."""
        seen: dict[str, int] = {}
        for line in readme_flask_lines():
            key = line.key(self.mode)
            skipped = next((why for prefix, why in SKIPPED.items() if key.startswith(prefix)), None)
            if key in seen:
                skipped = f"the same command as README line {seen[key]}, which ran already"
            seen.setdefault(key, line.number)
            outcome = Outcome(line, key, skipped)
            if skipped is None:
                done = self.shell(line.shell_text(self.mode), STDIN.get(key))
                outcome.status, outcome.output = done.returncode, done.stdout + done.stderr
                self.open_links(key, outcome.output)
            self.outcomes.append(outcome)

    def open_links(self, key: str, output: str) -> None:
        """Open a one-time link a line printed, at once (a later line may disable its account)."""
        link = re.search(r"http://\S+/account/password/\S+", output)
        if link:
            self.facts.setdefault("links", {})[key] = (link.group(0), http_status(link.group(0)))

    def look_around(self) -> None:
        """While it runs: the record, and the batches the CLI queued, once they are final."""
        self.facts["record"] = json.loads((self.copy / "instance" / "local-run.json").read_text())
        batch_ids = [int(n) for o in self.outcomes for n in re.findall(r"Batch (\d+): \d+ images? queued", o.output)]
        self.facts["batches"] = {batch_id: self.wait_until_done(batch_id) for batch_id in batch_ids}

    def wait_until_done(self, batch_id: int, timeout: float = 60.0) -> list[str]:
        """The statuses of a batch's images once none is queued or running (read from the run's database)."""
        deadline = time.monotonic() + timeout
        while True:
            with sqlite3.connect(self.copy / "instance" / "app.db") as database:
                statuses = [row[0] for row in database.execute(
                    "SELECT status FROM generations WHERE batch_id = ? ORDER BY position", (batch_id,))]
            if not {"queued", "running"} & set(statuses) or time.monotonic() > deadline:
                return statuses
            time.sleep(0.2)

    def after_it_stops(self) -> None:
        """Once run.py is stopped: the CLI refuses, naming what to set, before it makes anything."""
        self.facts["record_left"] = (self.copy / "instance" / "local-run.json").exists()
        self.facts["batches_before"] = self.batch_count()
        self.after_stop["users list"] = self.shell("flask users list")
        self.after_stop["generate"] = self.shell('IMAGE_GENERATOR_LOCAL=1 flask generate "one more"')
        self.facts["batches_after"] = self.batch_count()

    def batch_count(self) -> int:
        with sqlite3.connect(self.copy / "instance" / "app.db") as database:
            return database.execute("SELECT count(*) FROM batches").fetchone()[0]


def http_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except HTTPError as error:
        return error.code


def exercised(mode: str, tmp: Path) -> LocalRun:
    """Start run.py in a fresh copy, run the README beside it, look around, stop it, and try again."""
    local = LocalRun(mode, tmp)
    local.make_copy()
    group = local.start()
    try:
        local.run_readme()
        local.look_around()
    finally:
        group.stop()
    local.after_it_stops()
    return local


@pytest.fixture(scope="module")
def default_run(tmp_path_factory) -> LocalRun:
    """`python3 scripts/run.py`: no sign-in."""
    return exercised("none", tmp_path_factory.mktemp("default-run"))


@pytest.fixture(scope="module")
def accounts_run(tmp_path_factory) -> LocalRun:
    """`AUTH_MODE=accounts python3 scripts/run.py`, as the README's API section starts it."""
    return exercised("accounts", tmp_path_factory.mktemp("accounts-run"))


def test_the_readme_shows_flask_lines_of_every_kind():
    keys = {line.key("none").split(" ")[1] for line in readme_flask_lines()}
    assert {"users", "tokens", "generate", "db", "media"} <= keys


def check_every_line(local: LocalRun) -> None:
    ran = [o for o in local.outcomes if o.skipped is None]
    assert len(ran) >= 10
    for outcome in ran:
        status, says = EXPECTED.get((local.mode, outcome.key), (0, ""))
        where = f"README line {outcome.line.number}: {outcome.line.text}\n{outcome.output}"
        assert outcome.status == status and says in outcome.output, where
        assert "Traceback" not in outcome.output, where
        if status:
            assert "queued" not in outcome.output, where


def test_every_readme_flask_line_works_beside_the_default_run(default_run):
    check_every_line(default_run)


def test_every_readme_flask_line_works_beside_an_accounts_run(accounts_run):
    check_every_line(accounts_run)


@pytest.mark.parametrize("which", ["default_run", "accounts_run"])
def test_beside_it_the_cli_uses_the_runs_url_secret_database_and_queue(request, which):
    local = request.getfixturevalue(which)
    assert local.facts["record"]["settings"]["AUTH_MODE"] == local.mode
    invite, status = local.facts["links"]["flask users create ann@example.com --monthly-credits 20 --invite"]
    assert invite.startswith(f"{local.url}/account/password/")
    assert status == 200  # signed with the run's secret key, for an account in the run's database
    batches = local.facts["batches"]
    # Without --user, accounts refuse the first; the template's and the grid's lines make one batch each.
    assert len(batches) == (4 if local.mode == "none" else 3)
    assert all(statuses and set(statuses) == {"succeeded"} for statuses in batches.values()), batches
    saved = sorted((local.copy / "out").iterdir())
    assert [path.name[:3] for path in saved] == ["001", "002"]


def test_the_terminal_shows_one_line_per_request_and_per_image_and_no_chatter(default_run):
    log = default_run.log
    after_banner = log[log.index(BANNER):]
    assert ACCESS_LINE.search(after_banner)
    for line in after_banner.splitlines():
        if re.match(r"(GET|POST|HEAD) ", line):
            assert ACCESS_LINE.fullmatch(line), line
    images = sum(len(statuses) for statuses in default_run.facts["batches"].values())
    # Two prompts, then the README's template (4 prompts) and grid (2 × 2 cells).
    assert len(re.findall(r" image \d+ succeeded in \d+\.\d s", log)) == images == 12
    for chatter in ("Job OK", "result is kept", "Sweep(", "Listening on", "Starting worker", "Control socket",
                    "Booting worker", "Traceback"):
        assert chatter not in log, chatter
    assert not (default_run.home / ".gunicorn").exists()


def test_the_banner_names_the_url_the_sign_in_mode_and_where_the_data_lives(default_run, accounts_run):
    for local, mode in ((default_run, "none - one local user"), (accounts_run, "accounts - everyone signs in")):
        banner = local.log[local.log.index("Image Generator is running"):local.log.index(BANNER)]
        assert f"running at {local.url}/" in banner and f"Sign-in:  {mode}" in banner
        instance = local.copy / "instance"
        assert f"SQLite, {instance / 'app.db'}" in banner and f"Images:   {instance / 'media'}" in banner
        assert str(instance / "redis") in banner


def test_once_it_stops_the_cli_names_what_to_set_before_making_anything(default_run):
    assert not default_run.facts["record_left"]
    listed = default_run.after_stop["users list"]
    assert listed.returncode == 3 and "IMAGE_GENERATOR_LOCAL=1" in listed.stderr
    generated = default_run.after_stop["generate"]
    assert generated.returncode == 1 and "REDIS_URL is not set" in generated.stderr
    assert "queued" not in generated.stdout + generated.stderr
    assert default_run.facts["batches_after"] == default_run.facts["batches_before"]
