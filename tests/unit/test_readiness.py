"""Readiness: the three checks and their details, judged on an injected clock; permanent failures, bounded."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sidecar.domain.secret import register_secret, unregister_secret
from sidecar.observability.metrics import Metrics
from sidecar.observability.readiness import Check, Readiness
from sidecar.observability.recorder import Recorder

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
MARGIN = 60.0
STALE = 90.0


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def readiness(clock: Clock) -> Readiness:
    return Readiness(identity_margin=MARGIN, mattermost_stale_after=STALE, max_failures=3, clock=clock)


def checks(readiness: Readiness) -> dict[str, Check]:
    return {check.name: check for check in readiness.report().checks}


def all_good(readiness: Readiness) -> None:
    readiness.watcher_connected(True)
    readiness.identity_expiry(NOW + 3600)
    readiness.mattermost_result(True, "health check passed")


def test_nothing_known_yet_is_not_ready_and_says_why(readiness: Readiness) -> None:
    report = readiness.report()
    assert not report.ready
    assert [(c.name, c.ok) for c in report.checks] == [("watch", False), ("identity", False), ("mattermost", False)]
    found = checks(readiness)
    assert found["watch"].detail == "waiting for the first watch stream's INIT from Teleport"
    assert found["identity"].detail == "no Teleport identity loaded yet"
    assert found["mattermost"].detail == "no contact with Mattermost yet"


def test_ready_when_every_check_passes(readiness: Readiness) -> None:
    all_good(readiness)
    report = readiness.report()
    assert report.ready
    found = checks(readiness)
    assert found["watch"].detail == "watch stream open, INIT received"
    assert found["identity"].detail == "valid until 2027-01-15T09:00:00Z (3600 s left, margin 60 s)"
    assert found["mattermost"].detail == "reachable 0 s ago: health check passed"
    assert report.to_json() == {
        "ready": True,
        "checks": [{"name": c.name, "ok": True, "detail": c.detail} for c in report.checks],
        "permanent_failures": [],
    }


@pytest.mark.parametrize(
    ("left", "ok", "detail"),
    [
        (MARGIN, True, "valid until 2027-01-15T08:01:00Z (60 s left, margin 60 s)"),
        (MARGIN - 1, False, "the Teleport identity expires at 2027-01-15T08:00:59Z, in 59 s, less than the 60 s "
                            "margin: renew it (is tbot running?)"),
        (0, False, "the Teleport identity expired at 2027-01-15T08:00:00Z: renew it (is tbot running?)"),
        (-30, False, "the Teleport identity expired at 2027-01-15T07:59:30Z: renew it (is tbot running?)"),
    ],
)
def test_identity_must_outlast_the_margin(readiness: Readiness, left: float, ok: bool, detail: str) -> None:
    all_good(readiness)
    readiness.identity_expiry(NOW + left)
    assert checks(readiness)["identity"] == Check("identity", ok, detail)
    assert readiness.report().ready is ok


def test_identity_runs_out_as_time_passes_and_a_renewal_fixes_it(readiness: Readiness, clock: Clock) -> None:
    all_good(readiness)
    readiness.identity_expiry(NOW + 600)
    clock.now += 541
    assert not checks(readiness)["identity"].ok
    readiness.identity_expiry(clock.now + 3600)  # tbot renewed it and the sidecar reloaded it
    readiness.mattermost_result(True, "health check passed")
    assert readiness.report().ready


def test_a_lost_watch_stream_is_not_ready_until_the_next_init(readiness: Readiness, clock: Clock) -> None:
    all_good(readiness)
    readiness.watcher_connected(False)
    clock.now += 12
    assert checks(readiness)["watch"] == Check("watch", False, "watch stream lost 12 s ago; reconnecting to Teleport")
    readiness.watcher_connected(True)
    assert checks(readiness)["watch"].ok


def test_mattermost_failure_names_the_error_and_counts_from_the_first_failure(
    readiness: Readiness, clock: Clock
) -> None:
    all_good(readiness)
    clock.now += 5
    readiness.mattermost_result(False, "GET /api/v4/users/me: cannot connect (Connection refused)")
    clock.now += 20
    readiness.mattermost_result(False, "POST /api/v4/posts got no answer")
    clock.now += 10
    assert checks(readiness)["mattermost"] == Check(
        "mattermost", False, "unreachable for 30 s: POST /api/v4/posts got no answer"
    )
    assert not readiness.report().ready
    readiness.mattermost_result(True, "GET /api/v4/users/me answered HTTP 200")
    assert checks(readiness)["mattermost"].ok


def test_a_stale_mattermost_verdict_is_not_trusted(readiness: Readiness, clock: Clock) -> None:
    all_good(readiness)
    clock.now += STALE
    assert checks(readiness)["mattermost"].ok
    clock.now += 1
    assert checks(readiness)["mattermost"] == Check(
        "mattermost", False, "no contact with Mattermost for 91 s (more than 90 s); last: health check passed"
    )


def test_permanent_failures_are_listed_newest_first_deduplicated_and_bounded(
    readiness: Readiness, clock: Clock
) -> None:
    all_good(readiness)
    fix = "add the bot to the channel: /invite @teleport"
    readiness.permanent_failure("post to team/a", "HTTP 403 bot not in channel", fix)
    clock.now += 1
    readiness.permanent_failure("post to team/b", "HTTP 403 bot not in channel", fix)
    clock.now += 1
    readiness.permanent_failure("post to team/a", "HTTP 403 bot not in channel", fix)  # again: counted
    report = readiness.report()
    assert report.ready  # they need a person, not a restart
    assert [(f.what, f.count) for f in report.permanent_failures] == [("post to team/a", 2), ("post to team/b", 1)]
    assert report.to_json()["permanent_failures"] == [
        {"what": "post to team/a", "error": "HTTP 403 bot not in channel", "fix": fix, "count": 2,
         "first_seen": "2027-01-15T08:00:00Z", "last_seen": "2027-01-15T08:00:02Z"},
        {"what": "post to team/b", "error": "HTTP 403 bot not in channel", "fix": fix, "count": 1,
         "first_seen": "2027-01-15T08:00:01Z", "last_seen": "2027-01-15T08:00:01Z"},
    ]
    for name in "cde":
        readiness.permanent_failure(f"post to team/{name}", "HTTP 403", fix)
    assert [f.what for f in readiness.report().permanent_failures] == ["post to team/e", "post to team/d",
                                                                       "post to team/c"]


@pytest.fixture
def registered() -> Iterator[str]:
    token = "tok-readiness-7q2"
    register_secret(token)
    yield token
    unregister_secret(token)


def test_permanent_failures_mask_secrets_and_stay_small(readiness: Readiness, registered: str) -> None:
    readiness.permanent_failure("post", f"HTTP 401 token {registered} refused", "x" * 5000)
    readiness.mattermost_result(False, f"bad token {registered}")
    [failure] = readiness.report().permanent_failures
    assert registered not in str(readiness.report().to_json())
    assert failure.error == "HTTP 401 token *** refused"
    assert len(failure.fix) == 300


@pytest.mark.parametrize(
    ("status", "ok"), [(200, True), (304, True), (403, True), (404, True), (429, True), (401, False), (500, False),
                       (503, False), (None, False)],
)
def test_every_mattermost_answer_tells_readiness_whether_mattermost_is_usable(
    readiness: Readiness, status: int | None, ok: bool
) -> None:
    recorder = Recorder(Metrics(), readiness)
    recorder.watcher_connected(True)
    recorder.identity_expiry(NOW + 3600)
    recorder.mattermost_call("POST /api/v4/posts", status, 0.01)
    found = checks(readiness)["mattermost"]
    assert found.ok is ok
    assert ("POST /api/v4/posts answered HTTP" if status else "POST /api/v4/posts got no answer") in found.detail
    assert recorder.metrics.registry.get_sample_value("teleport_mattermost_mattermost_reachable") == float(ok)


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="identity_margin"):
        Readiness(identity_margin=-1, mattermost_stale_after=90)
    with pytest.raises(ValueError, match="mattermost_stale_after"):
        Readiness(identity_margin=60, mattermost_stale_after=0)
