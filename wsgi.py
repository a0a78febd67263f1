"""WSGI entry point: `gunicorn wsgi:app`."""

from dotenv import load_dotenv

load_dotenv(override=False)

from app import create_app  # noqa: E402  (the environment must be loaded first)

app = create_app()
