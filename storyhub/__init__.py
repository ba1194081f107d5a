"""StoryHub: Community Reporting for probation services."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask

from . import config


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the StoryHub application."""
    app = Flask(__name__, instance_path=os.environ.get("STORYHUB_INSTANCE_PATH"),
                instance_relative_config=True)
    app.config.from_mapping(config.DEFAULTS)
    app.config.from_pyfile("storyhub.cfg", silent=True)
    app.config.from_prefixed_env("STORYHUB")
    if test_config is not None:
        app.config.from_mapping(test_config)

    from .storage import private_folder

    private_folder(app.instance_path)  # holds keys and personal data: the owner's alone
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.load_secret_key(app.instance_path)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI",
                          config.database_uri(app.config["DATABASE_URL"], app.instance_path))
    app.config["MAX_CONTENT_LENGTH"] = int(app.config["MAX_UPLOAD_MB"]) * 1024 * 1024
    proxies = int(app.config["TRUSTED_PROXIES"] or 0)
    if proxies > 0:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Only that many X-Forwarded-* entries, set by our own proxies, are believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

    from . import audit, database, jobs, keys, security, storage  # noqa: F401  (audit: its model)
    from .accounts import auth
    from .accounts import models as _accounts_models  # noqa: F401
    from .extensions import csrf, db, limiter, migrate
    from .jobs import models as _jobs_models  # noqa: F401
    from .library import models as _library_models  # noqa: F401
    from .packs import models as _packs_models  # noqa: F401
    from .stories import models as _stories_models  # noqa: F401
    from .themes import models as _themes_models  # noqa: F401
    from .transcripts import models as _transcripts_models  # noqa: F401

    db.init_app(app)
    database.init_app(app)
    keys.init_app(app)
    migrate.init_app(app, db, directory=os.path.join(os.path.dirname(__file__), "migrations"))
    csrf.init_app(app)
    limiter.init_app(app)
    auth.init_app(app)
    security.init_app(app)
    jobs.init_app(app)
    storage.init_app(app)

    from .accounts.views import bp as accounts_bp
    from .admin.views import bp as admin_bp
    from .home.views import bp as home_bp
    from .library.views import bp as library_bp
    from .packs.views import bp as packs_bp
    from .stories.views import bp as stories_bp
    from .themes.views import bp as themes_bp
    from .transcripts.views import bp as transcripts_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(stories_bp)
    app.register_blueprint(transcripts_bp)
    app.register_blueprint(themes_bp)
    app.register_blueprint(library_bp)
    app.register_blueprint(packs_bp)

    from .themes import warmup

    warmup.init_app(app)

    from . import cli

    cli.init_app(app)
    return app
