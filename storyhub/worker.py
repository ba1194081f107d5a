"""Entry point for `celery -A storyhub.worker:celery worker`.

Like the site, a worker will not start on a database that a newer StoryHub upgraded: older
code would read and write tables it does not understand. It does not upgrade the schema
itself; the site (`storyhub run`) or `storyhub upgrade` does that.
"""

import sys

from . import create_app
from .config import SettingsError
from .database import check_schema_not_newer
from .upgrades import SchemaTooNew

try:
    app = create_app()
    check_schema_not_newer(app)
except SettingsError as refused:
    sys.exit(f"The StoryHub worker will not start: {refused}")
except SchemaTooNew as refused:
    # Said on stderr and exit status 1, before Celery starts: a sentence, not a traceback.
    sys.exit(f"The StoryHub worker will not start. {refused.message}")
celery = app.extensions["celery"]
