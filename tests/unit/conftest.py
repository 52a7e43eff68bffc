"""The unit tier's shared fixture: the secret registry is process-wide, so each test's registrations are dropped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.domain.secret import registered_secrets, unregister_secret


@pytest.fixture(autouse=True)
def _forget_registered_secrets() -> Iterator[None]:
    """Loading a config (or building a Secret) registers its value for log masking: drop what the test added."""
    before = registered_secrets()
    yield
    for value in registered_secrets() - before:
        unregister_secret(value)
