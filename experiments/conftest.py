"""Experiments share the session's `cluster` (resilience.pytest_plugin); nothing else is needed here."""
