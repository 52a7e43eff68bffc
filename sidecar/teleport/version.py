"""Strict semantic versions, for the minimum Teleport server version check (Go `CheckMinVersion`)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sidecar.domain.errors import VersionError

MIN_SERVER_VERSION = "6.1.0-beta.1"

_SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)(?:\.(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*))*))?"
    r"(?:\+([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?$"
)


@dataclass(frozen=True)
class Version:
    """A parsed X.Y.Z[-pre][+build] version; build metadata does not take part in ordering."""

    major: int
    minor: int
    patch: int
    prerelease: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version:
        """Parse strict semver (no leading `v`), raising VersionError naming the bad text."""
        m = _SEMVER.match(text)
        if m is None:
            raise VersionError(f"invalid server version {text!r}: not a semantic version X.Y.Z[-pre][+build]")
        pre = tuple(m.group(4).split(".")) if m.group(4) else ()
        return cls(int(m.group(1)), int(m.group(2)), int(m.group(3)), pre)

    def _key(self) -> tuple[int, int, int, int, tuple[tuple[int, int, str], ...]]:
        # A release sorts after all of its pre-releases; numeric identifiers sort before alphanumeric ones.
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.prerelease)
        return (self.major, self.minor, self.patch, 0 if self.prerelease else 1, pre)

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __le__(self, other: Version) -> bool:
        return self._key() <= other._key()


def check_min_version(current: str, minimum: str = MIN_SERVER_VERSION) -> None:
    """Raise VersionError `incompatible versions: <cur> < <min>` when the server is too old."""
    if Version.parse(current) < Version.parse(minimum):
        raise VersionError(f"incompatible versions: {current} < {minimum}")
