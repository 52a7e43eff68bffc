"""Minimum server version check, as Go's CheckMinVersion."""

from __future__ import annotations

import itertools

import pytest

from sidecar.domain.errors import VersionError
from sidecar.teleport.version import Version, check_min_version


@pytest.mark.parametrize("current", ["6.1.0-beta.1", "6.1.0", "6.1.1", "18.0.0", "7.0.0-rc.1", "18.0.0+abc"])
def test_accepts_new_enough(current: str) -> None:
    check_min_version(current)


@pytest.mark.parametrize("current", ["6.1.0-alpha.9", "6.1.0-beta.0", "6.0.9", "5.99.99"])
def test_rejects_too_old(current: str) -> None:
    with pytest.raises(VersionError, match=rf"^incompatible versions: {current} < 6\.1\.0-beta\.1$"):
        check_min_version(current)


@pytest.mark.parametrize("bad", ["v18.0.0", "18.0", "18", "", "18.0.0-", "01.0.0", "18.0.0 "])
def test_rejects_malformed(bad: str) -> None:
    with pytest.raises(VersionError, match="not a semantic version"):
        Version.parse(bad)


def test_prerelease_ordering() -> None:
    order = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
             "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0"]
    parsed = [Version.parse(v) for v in order]
    assert parsed == sorted(parsed)
    assert all(a < b for a, b in itertools.pairwise(parsed))
