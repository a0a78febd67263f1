"""scripts/run.py serves with gunicorn as production does; Flask's development server only with --debug."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import run  # noqa: E402


def test_the_one_command_serves_with_gunicorn_on_loopback_with_the_production_settings():
    args = run.web_server_args(5000, debug=False)
    assert args[:2] == ["-m", "gunicorn"]
    assert "python:app.gunicorn_config" in args
    assert args[args.index("--bind") + 1] == "127.0.0.1:5000"


def test_debug_asks_for_flasks_development_server_with_the_reloader():
    args = run.web_server_args(5001, debug=True)
    assert args[:4] == ["-m", "flask", "--app", "wsgi"] and "--debug" in args
    assert args[args.index("--host") + 1] == "127.0.0.1"
