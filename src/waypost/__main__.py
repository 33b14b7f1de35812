"""`python -m waypost`."""

from __future__ import annotations

from waypost.cli import entrypoint

entrypoint()
