"""The callback paths the review listener serves, and the URLs Mattermost is given for them."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

__all__ = ["ACTION_PATH", "DIALOG_PATH", "PING_PATH", "callback_url", "served_paths"]

ACTION_PATH: Final = "/review/v1/action"  # button clicks
DIALOG_PATH: Final = "/review/v1/dialog"  # reason dialog submissions
PING_PATH: Final = "/review/v1/ping"  # GET, for an operator checking the network path from a Mattermost host


def callback_url(public_url: str, path: str) -> str:
    """The URL Mattermost calls for `path`: `public_url` (which may carry a proxy's path prefix) + `path`."""
    return public_url.rstrip("/") + path


def served_paths(public_url: str, path: str) -> tuple[str, ...]:
    """Where the listener answers for `path`: at the root, and also under `public_url`'s path prefix when it has
    one, so a reverse proxy may forward with or without stripping the prefix."""
    prefix = urlsplit(public_url).path.rstrip("/")
    return (path, prefix + path) if prefix else (path,)
