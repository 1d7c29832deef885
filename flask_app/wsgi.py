"""The WSGI entry point for gunicorn: ``gunicorn flask_app.wsgi:app``.

``app`` is the Flask application with the liveness fast path in front
(:func:`flask_app.ops.install_health_fast_path`): the load balancer's ``/health`` polls skip
Flask's routing and request hooks; everything else is served by Flask as ``create_app`` made it.

The instances' gunicorn imports this module once, in its master, and forks the workers from it
(``preload_app``). A forked worker first drops what it inherited and must not share with its
parent or its siblings (:func:`fresh_after_fork`): the database pools' connections and the AWS
clients, whose sockets are the parent's.
"""

from __future__ import annotations

import os

from flask import Flask

from flask_app import create_app
from flask_app.aws import Aws
from flask_app.ops import install_health_fast_path
from flask_app.state import get_state


def fresh_after_fork(application: Flask) -> None:
    """In a forked child: new, empty database pools and AWS clients for ``application``.

    The inherited connections are dropped without being closed (SQLAlchemy's
    ``Engine.dispose(close=False)``, its remedy for ``os.fork``): closing them would close
    them under the parent too. The child connects, and resolves the region, on first use, as a
    worker that imports the app itself does.
    """
    state = get_state(application)
    state.engine.dispose(close=False)
    if state.ready_engine is not state.engine:
        state.ready_engine.dispose(close=False)
    state.aws = Aws(state.aws.endpoint_url)


app = install_health_fast_path(create_app())
os.register_at_fork(after_in_child=lambda: fresh_after_fork(app))
