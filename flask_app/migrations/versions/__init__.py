"""Alembic revisions, oldest first (a package so that they are installed)."""
