"""Interactive dialogs: opened with a trigger id, submitted by the user's client, forwarded to the integration."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fakes.mattermost.server import FakeMattermost
from tests.fakes.mattermost.buttons import post_buttons
from tests.fakes.mattermost.conftest import Client, Hook

ADMIN = "admin-token"
SUBMISSION_KEYS = ["type", "callback_id", "state", "user_id", "channel_id", "team_id", "submission", "cancelled"]
REASON_DIALOG: dict[str, Any] = {
    "callback_id": "review",
    "title": "Approve request",
    "introduction_text": "Why?",
    "elements": [{"display_name": "Reason", "name": "reason", "type": "textarea", "optional": True,
                  "max_length": 500}],
    "submit_label": "Approve",
    "notify_on_cancel": True,
    "state": "signed-state",
}


async def click_for_trigger(api: Client, mm: FakeMattermost, hook: Hook, user: str = "reviewer") -> tuple[str, str]:
    """Click a button as `user`; (the signed trigger id the integration got, the post's channel)."""
    post = await post_buttons(api, mm, hook.url)
    reply = await mm.control.click(user, post["id"], "approve")
    assert reply.status == 200
    trigger_id: str = hook.calls[-1]["trigger_id"]
    return trigger_id, post["channel_id"]


async def open_dialog(api: Client, trigger_id: str, url: str, dialog: dict[str, Any] = REASON_DIALOG) -> Any:
    """What the integration does: open a dialog with the trigger id, no token needed."""
    return await api.call("POST", "/api/v4/actions/dialogs/open", None,
                          {"trigger_id": trigger_id, "url": url, "dialog": dialog})


async def test_a_trigger_opens_a_dialog_for_the_clicker(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    trigger_id, _ = await click_for_trigger(apii, mmi, hook)
    reply = await open_dialog(apii, trigger_id, hook.url)
    assert reply.status == 200
    assert reply.raw == b'{"status":"OK"}'  # ReturnStatusOK: json.Marshal, no newline
    [dialog] = mmi.control.dialogs("reviewer")
    assert dialog.user_id == mmi.control.user_id("reviewer")
    assert len(dialog.trigger_id) == 26
    assert dialog.url == hook.url
    assert dialog.dialog["title"] == "Approve request" and dialog.problems == ()
    assert mmi.control.dialogs("reviewer2") == []
    listed = (await apii.call("GET", "/fake/dialogs?username=reviewer", ADMIN)).body
    assert [(d["id"], d["dialog"]["state"]) for d in listed] == [(dialog.id, "signed-state")]


async def test_the_client_trigger_id_replaces_the_signed_one(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    post = await post_buttons(apii, mmi, hook.url)
    click = await mmi.control.click("reviewer", post["id"], "approve")
    await open_dialog(apii, hook.calls[0]["trigger_id"], hook.url)
    assert mmi.control.dialogs()[0].trigger_id == click.body["trigger_id"]


async def test_trigger_ids_expire_and_must_verify(
    apii: Client, mmi: FakeMattermost, hook: Hook, clock: Any
) -> None:
    trigger_id, _ = await click_for_trigger(apii, mmi, hook)
    # The server keeps no record of used trigger ids: while fresh, one opens any number of dialogs.
    assert (await open_dialog(apii, trigger_id, hook.url)).status == 200
    assert (await open_dialog(apii, trigger_id, hook.url)).status == 200
    clock.advance(31)
    expired = await open_dialog(apii, trigger_id, hook.url)
    assert (expired.status, expired.body["id"]) == (400, "interactive_message.decode_trigger_id.expired")
    assert expired.body["message"].endswith("Trigger IDs live for a maximum of 30s.")
    forged = await open_dialog(apii, "Zm9yZ2Vk", hook.url)
    assert (forged.status, forged.body["id"]) == (400, "interactive_message.decode_trigger_id.missing_data")
    assert len(mmi.control.dialogs()) == 2


async def test_open_dialog_request_errors(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    trigger_id, _ = await click_for_trigger(apii, mmi, hook)
    no_url = await apii.call("POST", "/api/v4/actions/dialogs/open", None, {"trigger_id": trigger_id, "dialog": {}})
    assert (no_url.status, no_url.body["id"]) == (400, "api.context.invalid_param.app_error")
    assert no_url.body["message"] == "Invalid url parameter."
    for raw in (b"not json", b"", b'{"url": 5}', b'{"url": "u", "dialog": {"elements": "x"}}'):
        bad = await apii.call("POST", "/api/v4/actions/dialogs/open", None, raw=raw)
        assert (bad.status, bad.body["message"]) == (400, "Invalid dialog parameter."), raw
    # Go's decoder reads the first JSON value only.
    trailing = json.dumps({"trigger_id": trigger_id, "url": hook.url, "dialog": REASON_DIALOG}).encode() + b" trailing"
    assert (await apii.call("POST", "/api/v4/actions/dialogs/open", None, raw=trailing)).status == 200


async def test_an_invalid_dialog_is_opened_with_its_problems_noted(
    apii: Client, mmi: FakeMattermost, hook: Hook
) -> None:
    trigger_id, _ = await click_for_trigger(apii, mmi, hook)
    dialog = {"title": "A title longer than twenty-four bytes", "elements": [
        {"display_name": "Reason", "name": "reason", "type": "text", "min_length": 5},
        {"display_name": "Reason", "name": "reason", "type": "colour"},
    ]}
    assert (await open_dialog(apii, trigger_id, hook.url, dialog)).status == 200
    problems = mmi.control.dialogs()[0].problems
    assert any(p.startswith("invalid dialog title") for p in problems)
    assert "duplicate dialog element 'reason'" in problems
    assert any("min length should be less then max length, got 5 > 0" in p for p in problems)
    assert any("invalid element type: 'colour'" in p for p in problems)


async def test_a_submission_reaches_the_integration(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    trigger_id, channel_id = await click_for_trigger(apii, mmi, hook)
    await open_dialog(apii, trigger_id, hook.url)
    [dialog] = mmi.control.dialogs("reviewer")
    reply = await mmi.control.submit_dialog("reviewer", channel_id=channel_id, dialog=dialog,
                                            submission={"reason": "on call", "n": 1.0})
    assert reply.status == 200 and reply.body == {}
    raw = hook.raw[-1]
    call = json.loads(raw)
    assert list(call) == SUBMISSION_KEYS  # the url is not forwarded
    team_id = mmi.control.seed_ids()["teams"]["myteam"]
    assert call == {
        "type": "dialog_submission",
        "callback_id": "review",
        "state": "signed-state",
        "user_id": mmi.control.user_id("reviewer"),
        "channel_id": channel_id,
        "team_id": team_id,
        "submission": {"n": 1, "reason": "on call"},
        "cancelled": False,
    }
    [record] = mmi.control.integration_calls(kind="dialog_submission")
    assert record.body == raw.decode() and record.outcome == {"status": 200}


async def test_the_client_controls_everything_but_the_user(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    channel_id = mmi.control.channel_id("myteam", "town-square")
    token = mmi.control.user_token("reviewer")
    body = {"url": hook.url, "callback_id": "made-up", "state": "forged", "user_id": mmi.control.user_id("reviewer2"),
            "channel_id": channel_id, "team_id": mmi.control.seed_ids()["teams"]["myteam"],
            "submission": {"reason": "x"}, "cancelled": True, "type": "refresh"}
    reply = await apii.call("POST", "/api/v4/actions/dialogs/submit", token, body)
    assert reply.status == 200
    call = hook.calls[-1]
    assert call["user_id"] == mmi.control.user_id("reviewer")  # from the session, never from the body
    assert (call["state"], call["callback_id"], call["cancelled"], call["type"]) == ("forged", "made-up", True,
                                                                                      "refresh")


@pytest.mark.parametrize(
    ("answer", "status", "body"),
    [
        (b"", 200, {}),
        (b"{}", 200, {}),
        (b'{"errors": {"reason": "Short", "a": "b"}, "junk": 1}', 200, {"errors": {"a": "b", "reason": "Short"}}),
        (b'{"error": "Request already resolved"}', 200, {"error": "Request already resolved"}),
        (b'{"type": "ok"}', 200, {"type": "ok"}),
        (b'{"type": "bogus"}', 400, "app.submit_interactive_dialog.invalid_response"),
        (b'{"type": "form"}', 400, "app.submit_interactive_dialog.invalid_response"),
        (b'{"errors": {"reason": 5}}', 500, "app.submit_interactive_dialog.decode_json_error"),
        (b"not json", 500, "app.submit_interactive_dialog.decode_json_error"),
    ],
)
async def test_the_integrations_answer(
    apii: Client, mmi: FakeMattermost, hook: Hook, answer: bytes, status: int, body: Any
) -> None:
    hook.answer = answer
    channel_id = mmi.control.channel_id("myteam", "town-square")
    reply = await mmi.control.submit_dialog("reviewer", channel_id=channel_id, url=hook.url, submission={})
    assert reply.status == status
    if status == 200:
        assert reply.body == body
    else:
        assert reply.body["id"] == body


async def test_submission_refusals(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    square = mmi.control.channel_id("myteam", "town-square")
    secret = mmi.control.channel_id("myteam", "secret-reviews")
    submit = mmi.control.submit_dialog
    no_url = await submit("reviewer", channel_id=square, url="")
    assert (no_url.status, no_url.body["message"]) == (400, "Invalid url parameter.")
    unknown = await submit("reviewer", channel_id="c" * 26, url=hook.url)
    assert (unknown.status, unknown.body["id"]) == (404, "app.channel.get.existing.app_error")
    unreadable = await submit("requester", channel_id=secret, url=hook.url)
    assert (unreadable.status, unreadable.body["id"]) == (403, "api.context.permissions.app_error")
    no_team = await submit("reviewer", channel_id=square, url=hook.url, team_id="")
    assert no_team.status == 403
    assert hook.calls == []
    hook.status = 500
    failing = await submit("reviewer", channel_id=square, url=hook.url)
    assert (failing.status, failing.body["id"]) == (400, "api.post.do_action.action_integration.app_error")
    anonymous = await apii.call("POST", "/api/v4/actions/dialogs/submit", None, {"url": hook.url})
    assert anonymous.status == 401
    token = mmi.control.user_token("reviewer")
    bad = await apii.call("POST", "/api/v4/actions/dialogs/submit", token, {"url": hook.url, "submission": []})
    assert (bad.status, bad.body["message"]) == (400, "Invalid dialog parameter.")


async def test_a_refused_address_applies_to_submissions(api: Client, mm: FakeMattermost, hook: Hook) -> None:
    channel_id = mm.control.channel_id("myteam", "town-square")
    reply = await mm.control.submit_dialog("reviewer", channel_id=channel_id, url=hook.url)
    assert reply.status == 400
    assert hook.calls == []
    assert mm.control.integration_calls()[0].error.startswith("refused: ")


async def test_submit_over_the_test_face(apii: Client, mmi: FakeMattermost, hook: Hook) -> None:
    trigger_id, channel_id = await click_for_trigger(apii, mmi, hook)
    await open_dialog(apii, trigger_id, hook.url)
    dialog_id = mmi.control.dialogs()[0].id
    reply = await apii.call("POST", "/fake/dialogs/submit", ADMIN, {
        "username": "reviewer", "dialog_id": dialog_id, "channel_id": channel_id, "submission": {"reason": "r"}})
    assert reply.status == 200 and reply.body == {"status": 200, "body": {}}
    assert hook.calls[-1]["state"] == "signed-state"
    missing = await apii.call("POST", "/fake/dialogs/submit", ADMIN,
                              {"username": "reviewer", "dialog_id": "nope", "channel_id": channel_id})
    assert missing.status == 404
