"""The Flask web application's blueprints: one module per domain, composed in :mod:`blueprints.webapp`."""
