"""Shared pytest setup: the `eafix` package is imported from the installed distribution."""
