"""The project definition the ``cfnbuild`` CLI loads (``[tool.cfnbuild] app`` in pyproject.toml)."""

from __future__ import annotations

from blueprints.config import WebAppConfig
from blueprints.webapp import build_webapp
from cfnbuild import App, StackSpec

app = App(
    config_model=WebAppConfig,
    stacks=[StackSpec("webapp", build_webapp, "The Flask web application and everything it runs on.")],
)
