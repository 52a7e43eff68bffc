"""ChannelProvider identity listeners: told of the identity in use, and of every identity a reload installs."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from fakes.teleport_auth.ca import ClusterAuthority
from sidecar.teleport.identity import Identity
from sidecar.teleport.transport import ChannelProvider, IdentitySource, TransportKind


def _issue(authority: ClusterAuthority, path: Path, ttl: timedelta) -> None:
    authority.issue_user("sidecar", ["access-plugin"], ttl).write_identity_file(path)


async def test_listeners_hear_the_current_identity_and_every_reload(tmp_path: Path) -> None:
    authority = ClusterAuthority.load_or_create(tmp_path / "home", "listener.example.com")
    path = tmp_path / "identity"
    _issue(authority, path, timedelta(hours=1))
    # No RPC is made: a channel to a port nobody listens on is never dialled.
    provider = await ChannelProvider.open("127.0.0.1:1", IdentitySource(identity_file=path), TransportKind.DIRECT)
    try:
        heard: list[datetime] = []

        def listener(identity: Identity) -> None:
            heard.append(identity.not_after)

        provider.add_identity_listener(listener)
        assert heard == [provider.identity.not_after]

        _issue(authority, path, timedelta(hours=5))
        assert await provider.check_now() is True
        assert len(heard) == 2 and heard[1] == provider.identity.not_after
        assert heard[1] - heard[0] > timedelta(hours=3)

        await asyncio.to_thread(path.write_text, "garbage\n")
        assert await provider.check_now() is False  # a failed reload keeps the old identity: nothing to tell
        assert len(heard) == 2
    finally:
        await provider.close()
