"""sidecar.domain.secret: a Secret never prints its value; the registry masks registered values."""

from __future__ import annotations

import logging
import pickle

import pytest

from sidecar.domain.secret import MASK, Secret, mask_secrets, register_secret, registered_secrets, unregister_secret

VALUE = "xoxb-very-secret-token-4711"


def test_reveal_returns_the_value() -> None:
    assert Secret(VALUE).reveal() == VALUE


def test_no_formatting_shows_the_value() -> None:
    secret = Secret(VALUE)
    shown = [
        repr(secret),
        str(secret),
        f"{secret}",
        f"{secret!r}",
        f"{secret:>40}",
        "%s" % secret,  # noqa: UP031 (the %-operator is what we are testing)
        "%r" % secret,  # noqa: UP031
        "{}".format(secret),  # noqa: UP032
        repr([secret]),
        repr({"token": secret}),
        str((secret,)),
    ]
    for text in shown:
        assert VALUE not in text
        assert MASK in text
    assert str(secret) == "***"
    assert repr(secret) == "Secret('***')"


def test_logging_never_shows_the_value(caplog: pytest.LogCaptureFixture) -> None:
    # No registration here: the type alone must keep it out of every log rendering.
    secret = Secret(VALUE)
    logger = logging.getLogger("sidecar.test_secret")
    with caplog.at_level(logging.DEBUG):
        logger.info("token is %s", secret)
        logger.info("token repr %r", secret)
        logger.info("token in extra", extra={"token": secret})
        logger.info(secret)
    assert caplog.records
    for record in caplog.records:
        assert VALUE not in record.getMessage()
    assert VALUE not in caplog.text


def test_not_equal_to_plain_strings() -> None:
    secret = Secret(VALUE)
    assert secret != VALUE
    assert VALUE != secret  # noqa: SIM300 (the reflected comparison is the point)
    assert not (secret == VALUE)  # noqa: SIM201 (testing __eq__ itself)
    assert secret != MASK


def test_equal_secrets_compare_equal() -> None:
    assert Secret(VALUE) == Secret(VALUE)
    assert Secret(VALUE) != Secret(VALUE + "x")
    assert hash(Secret(VALUE)) == hash(Secret(VALUE))
    assert len({Secret(VALUE), Secret(VALUE)}) == 1


def test_truthiness_follows_the_value() -> None:
    assert Secret(VALUE)
    assert not Secret("")


def test_only_strings_are_wrapped() -> None:
    with pytest.raises(TypeError, match="Secret wraps a str, got bytes"):
        Secret(b"raw")  # type: ignore[arg-type]


def test_pickling_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(VALUE))


def test_no_attribute_dict_to_leak_through() -> None:
    secret = Secret(VALUE)
    assert not hasattr(secret, "__dict__")
    with pytest.raises(AttributeError):
        secret.extra = 1  # type: ignore[attr-defined]


def test_registry_masks_registered_values() -> None:
    assert mask_secrets(f"a {VALUE} b") == f"a {VALUE} b"
    register_secret(VALUE)
    assert mask_secrets(f"a {VALUE} b {VALUE}") == "a *** b ***"
    unregister_secret(VALUE)
    assert mask_secrets(VALUE) == VALUE


def test_registry_accepts_secret_objects_and_ignores_empty() -> None:
    before = registered_secrets()
    register_secret("")
    assert registered_secrets() == before
    register_secret(Secret(VALUE))
    assert VALUE in registered_secrets()


def test_longer_secret_masked_whole() -> None:
    register_secret("abcd")
    register_secret("abcd-efgh")
    assert mask_secrets("x abcd-efgh y abcd") == "x *** y ***"
