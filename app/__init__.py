"""Image Generator: several prompts in, images out, live."""

from __future__ import annotations

from pathlib import Path

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.routing import IntegerConverter, Map

from app.config import LOCAL_SECRET_FILE, Config, ConfigError, local_secret_key
from app.models import MAX_ID

DEFAULT_INSTANCE_PATH = str(Path(__file__).resolve().parent.parent / "instance")


class IdConverter(IntegerConverter):
    """Werkzeug's int converter capped at the largest id the database can hold."""

    def __init__(self, url_map: Map, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        kwargs.setdefault("max", MAX_ID)
        super().__init__(url_map, *args, **kwargs)


def create_app(config: Config | None = None) -> Flask:
    """Build the app: config, extensions, blueprints, error handlers, security headers."""
    config = config or Config(DEFAULT_INSTANCE_PATH)
    app = Flask(__name__, instance_path=config.INSTANCE_PATH, template_folder="../templates",
                static_folder="../static")
    app.config.from_object(config)
    # Every <int:…> in a URL is a database id: bounded, so a huge number is a 404, not an overflow.
    app.url_map.converters["int"] = IdConverter
    _resolve_secret_key(app)
    _trust_proxies(app)
    register_extensions(app)
    register_blueprints(app)
    from app import cli
    from app.web import errors, json_bodies, security, templating, upload_bodies

    errors.register(app)
    json_bodies.register(app)
    upload_bodies.register(app)
    security.register(app)
    templating.register(app)
    cli.register(app)
    return app


def _resolve_secret_key(app: Flask) -> None:
    """Use SECRET_KEY; local runs may fall back to a random per-install key, deployments may not."""
    if app.config.get("SECRET_KEY"):
        return
    if app.config.get("LOCAL_RUN") or app.debug:
        app.config["SECRET_KEY"] = local_secret_key(app.instance_path)
        return
    message = "SECRET_KEY must be set (see .env.example); only local runs may omit it"
    if (Path(app.instance_path) / LOCAL_SECRET_FILE).exists():  # scripts/run.py has run in this folder
        message += (". For the install scripts/run.py runs here: start it and run this beside it, or set "
                    "IMAGE_GENERATOR_LOCAL=1 to use its key (instance/secret_key)")
    raise ConfigError(message)


def _trust_proxies(app: Flask) -> None:
    """Behind TRUSTED_PROXIES proxies, take the client's address and scheme from the headers they add."""
    hops = app.config["TRUSTED_PROXIES"]
    # ProxyFix reads only the values the trusted hops appended (counted from the right): what a client wrote into
    # X-Forwarded-For itself stays to their left, unread. Host is left alone: proxies pass it through as it came.
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def register_extensions(app: Flask) -> None:
    """Bind the unbound extensions to this app."""
    from app import services
    from app.accounts import auth
    from app.extensions import csrf, db, limiter, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(app.root_path + "/../migrations"))
    services.init_app(app)
    # The sign-in wall first: a stranger's POST is sent to sign in, not told its form expired.
    auth.init_app(app)
    csrf.init_app(app)
    limiter.init_app(app)


def register_blueprints(app: Flask) -> None:
    """One blueprint per feature; the rq dashboard only when credentials are configured."""
    from app.accounts.admin import bp as admin_bp
    from app.accounts.routes import bp as accounts_bp
    from app.accounts.webhook_pages import bp as webhooks_bp
    from app.api.docs import bp as api_docs_bp
    from app.api.openapi import init_api
    from app.api.routes import bp as api_bp
    from app.api.token_pages import bp as tokens_bp
    from app.batches.routes import bp as batches_bp
    from app.gallery.collections import bp as collections_bp
    from app.gallery.marks import bp as marks_bp
    from app.gallery.routes import bp as gallery_bp
    from app.gallery.shares import bp as shares_bp
    from app.gallery.shares import public as shared_bp
    from app.media.routes import bp as media_bp
    from app.ops import dashboard
    from app.ops.health import bp as health_bp
    from app.ops.metrics import bp as metrics_bp
    from app.prompts.edit_routes import bp as edits_bp
    from app.prompts.routes import bp as prompts_bp
    from app.usage.routes import bp as usage_bp
    from app.variations.routes import bp as variations_bp

    for blueprint in (prompts_bp, edits_bp, batches_bp, gallery_bp, media_bp, accounts_bp, admin_bp, health_bp,
                      tokens_bp, api_docs_bp, metrics_bp, variations_bp, collections_bp, marks_bp, shares_bp,
                      shared_bp, webhooks_bp, usage_bp):
        app.register_blueprint(blueprint)
    init_api(app, api_bp)  # flask-smorest registers the API blueprint, documenting each view as it goes
    dashboard.register_dashboard(app)
