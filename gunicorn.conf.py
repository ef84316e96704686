"""gunicorn settings for the image's CMD (`gunicorn --config gunicorn.conf.py service.wsgi:app`).

The settings live in the package, service/gunicorn_conf.py, so that an installed (non-editable)
wheel has them too: `python -m service serve` runs `gunicorn -c python:service.gunicorn_conf`.
This file only re-exports them. gunicorn reads settings and server hooks by name from this
file's namespace, so the star import (which follows service.gunicorn_conf.__all__) is enough;
the hooks are also imported by name to make that explicit.
"""

from service.gunicorn_conf import *  # noqa: F403
from service.gunicorn_conf import (  # noqa: F401  (server hooks gunicorn looks up by name)
    child_exit,
    on_exit,
    on_starting,
    post_fork,
    post_worker_init,
    when_ready,
)
