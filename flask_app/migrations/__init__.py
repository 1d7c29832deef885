"""Alembic migrations of the application's schema (a package so that it is installed)."""
