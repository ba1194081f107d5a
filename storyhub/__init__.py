"""StoryHub: Community Reporting for probation services."""

from __future__ import annotations

import os
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

# Models are imported for their tables, so migrations and queries see every one.
from . import audit, backup, cli, config, database, jobs, keys, security, storage  # noqa: F401
from .accounts import auth
from .accounts import models as _accounts_models  # noqa: F401
from .accounts.views import bp as accounts_bp
from .admin.views import bp as admin_bp
from .evaluation.views import bp as evaluation_bp
from .extensions import csrf, db, limiter, migrate
from .home.views import bp as home_bp
from .jobs import models as _jobs_models  # noqa: F401
from .library import models as _library_models  # noqa: F401
from .library.views import bp as library_bp
from .packs import models as _packs_models  # noqa: F401
from .packs.views import bp as packs_bp
from .redaction.views import bp as redaction_bp
from .stories import models as _stories_models  # noqa: F401
from .stories.views import bp as stories_bp
from .themes import models as _themes_models  # noqa: F401
from .themes import warmup
from .themes.views import bp as themes_bp
from .transcripts import models as _transcripts_models  # noqa: F401
from .transcripts.views import bp as transcripts_bp


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create and configure the StoryHub application."""
    app = Flask(__name__, instance_path=config.instance_path(), instance_relative_config=True)
    # Defaults < instance/storyhub.cfg < STORYHUB_* < test_config; a bad one stops here.
    settings = config.init_app(app, test_config)

    storage.private_folder(app.instance_path)  # holds keys and personal data: the owner's alone
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = config.load_secret_key(app.instance_path)
    app.config.setdefault("SQLALCHEMY_DATABASE_URI",
                          config.database_uri(settings.database_url, app.instance_path))
    app.config["MAX_CONTENT_LENGTH"] = settings.max_upload_mb * 1024 * 1024
    proxies = settings.trusted_proxies
    if proxies > 0:
        # Only that many X-Forwarded-* entries, set by our own proxies, are believed.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]

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
    backup.init_app(app)

    app.register_blueprint(home_bp)
    app.register_blueprint(accounts_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(stories_bp)
    app.register_blueprint(transcripts_bp)
    app.register_blueprint(redaction_bp)
    app.register_blueprint(themes_bp)
    app.register_blueprint(library_bp)
    app.register_blueprint(packs_bp)
    app.register_blueprint(evaluation_bp)

    warmup.init_app(app)

    cli.init_app(app)
    return app
