"""The per-application state kept in ``app.extensions``: settings, engines, AWS."""

from __future__ import annotations

import dataclasses

from flask import Flask, current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from flask_app.aws import Aws
from flask_app.config import Settings

EXTENSION_KEY = "flask_app"


@dataclasses.dataclass(slots=True)
class AppState:
    """What a request needs beyond Flask: settings, database engines, AWS clients."""

    settings: Settings
    engine: Engine
    ready_engine: Engine
    session_factory: sessionmaker[Session]
    aws: Aws
    database_description: str

    def dispose(self) -> None:
        """Close every pooled database connection (tests, shutdown)."""
        self.engine.dispose()
        if self.ready_engine is not self.engine:
            self.ready_engine.dispose()


def get_state(app: Flask | None = None) -> AppState:
    """Return the state of ``app`` (default: the current application)."""
    state = (app or current_app).extensions[EXTENSION_KEY]
    if not isinstance(state, AppState):  # pragma: no cover - only create_app sets it
        raise TypeError("app.extensions['flask_app'] is not an AppState")
    return state
