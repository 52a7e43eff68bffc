"""Routing by Access Monitoring Rules end to end (scenarios R1-R20 of the AMR reference, §9.2).

Fake Teleport, fake Mattermost and the sidecar run as processes. Rules are written with the harness's `tctl`
(create, create -f, rm) in Teleport's YAML shape, as an administrator; the plugin's role is assembled per test
from building blocks, so a test can take away `access_monitoring_rule` or `user` permissions. R18 (a rule PUT
without its kind) cannot be produced by a fake that validates rules; tests/unit/test_watcher.py covers it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml

from fakes.launch import python_module
from fakes.stack import Stack
from tests.e2e.conftest import MakeStack, channel_id, dm_channel, edits, replies, roots, wait_posts

PLUGIN = ["plugin-base", "amr-reader", "user-reader"]  # the documented role
STATIC = {"*": ["myteam/town-square"]}
ANY_ROLE = "!is_empty(access_request.spec.roles)"

SEED = """
[settings]
request_ttl = "1h"
access_ttl = "8h"
session_ttl = "8h"
max_duration = "8h"

[roles.editor]
logins = ["root"]

[roles.editor-requester]
request = ["editor"]
thresholds = [{{ name = "default", approve = 1, deny = 1 }}]

[roles.editor-reviewer]
review = ["editor"]

[roles.plugin-base]
rules = [
    {{ resources = ["access_request"], verbs = ["list", "read"] }},
    {{ resources = ["access_plugin_data"], verbs = ["update"] }},
    {{ resources = ["role"], verbs = ["read"] }},
]

[roles.amr-reader]
rules = [{{ resources = ["access_monitoring_rule"], verbs = ["list", "read"] }}]

[roles.amr-read-only]
rules = [{{ resources = ["access_monitoring_rule"], verbs = ["read"] }}]

[roles.user-reader]
rules = [{{ resources = ["user"], verbs = ["read"] }}]

[roles.admin]
logins = ["root"]
request = ["*"]
review = ["*"]
rules = [{{ resources = ["*"], verbs = ["*"] }}]

[users.myuser]
roles = ["editor-requester"]
traits = {{ team = ["example"] }}

[users."requester@example.com"]
roles = ["editor-requester"]

[users."reviewer@example.com"]
roles = ["editor-reviewer"]

[users."reviewer2@example.com"]
roles = ["editor-reviewer"]

[users.admin]
roles = ["admin"]

[users.access-plugin]
roles = [{plugin_roles}]
"""


async def routing_stack(make_stack: MakeStack, tmp_path: Path, *, plugin_roles: Sequence[str] = PLUGIN,
                        static: Mapping[str, Sequence[str]] = STATIC, **options: Any) -> Stack:
    """A stack whose plugin role is made of `plugin_roles`, with `static` as [role_to_recipients]."""
    seed = tmp_path / f"seed-{'-'.join(plugin_roles)}.toml"
    seed.write_text(SEED.format(plugin_roles=", ".join(f'"{r}"' for r in plugin_roles)))
    options.setdefault("edition", "oss")
    return await make_stack(teleport_seed=seed, role_to_recipients=dict(static), **options)


async def tctl(stack: Stack, *args: str) -> str:
    """The harness's tctl as the administrator; returns its stdout."""
    _, out, _ = await stack.run_cli(*python_module(
        "fakes.tctl", "--addr", stack.auth["auth_addr"], "--identity", str(stack.identities["admin"]), *args,
    ))
    return out


async def put_rule(stack: Stack, name: str, condition: str = ANY_ROLE, recipients: Sequence[str] = (), *,
                   plugin: str = "mattermost", subjects: Sequence[str] = ("access_request",),
                   review: bool = False, force: bool = False) -> None:
    """`tctl create [-f] rule.yaml` with a rule in Teleport's resource shape."""
    spec: dict[str, Any] = {
        "subjects": list(subjects),
        "condition": condition,
        "notification": {"name": plugin, "recipients": list(recipients)},
    }
    if review:
        spec["automatic_review"] = {"integration": "builtin", "decision": "APPROVED"}
    resource = {"kind": "access_monitoring_rule", "version": "v1", "metadata": {"name": name}, "spec": spec}
    path = stack.workdir / f"rule-{name}.yaml"
    path.write_text(yaml.safe_dump(resource, sort_keys=False))
    out = await tctl(stack, "create", *(["-f"] if force else []), str(path))
    assert f'access monitoring rule "{name}" has been created' in out


async def delete_rule(stack: Stack, name: str) -> None:
    """`tctl rm access_monitoring_rule/NAME`."""
    await tctl(stack, "rm", f"access_monitoring_rule/{name}")


async def announce(stack: Stack, user: str = "myuser", reviewers: Sequence[str] = ()) -> tuple[str, set[str]]:
    """Create a request, wait until the sidecar is done with it, and return (its id, the channels posted to)."""
    rid = await stack.create_request(user, reason="routing", reviewers=reviewers)
    await stack.settled(rid)
    return rid, {post["channel_id"] for post in roots(await stack.posts(), rid)}


async def channels(stack: Stack, *recipients: str) -> set[str]:
    """The channel ids of emails (the bot's DMs) and `team/channel` names."""
    return {await (channel_id(stack, r) if "/" in r else dm_channel(stack, r)) for r in recipients}


@pytest.mark.parametrize("edition", ["oss", "enterprise"])
async def test_r1_a_rule_created_while_running_decides_alone(make_stack: MakeStack, tmp_path: Path,
                                                             edition: str) -> None:
    stack = await routing_stack(make_stack, tmp_path, edition=edition,
                                static={"*": ["myteam/town-square", "somethingThatWillBeOverWritten"]})
    await put_rule(stack, "r1", ANY_ROLE, ["myteam/general", "reviewer@example.com"])
    rid, posted = await announce(stack)
    assert posted == await channels(stack, "myteam/general", "reviewer@example.com")
    assert len((await stack.plugin_data(rid))["messages"].split(",")) == 2
    log = await stack.sidecar_log()
    assert "Routing by access monitoring rules" in log
    assert "somethingThatWillBeOverWritten" not in log  # the bad static entry is never resolved


async def test_r2_a_rule_created_before_the_start_is_listed(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = await routing_stack(make_stack, tmp_path, sidecar=False)
    await put_rule(stack, "r2", ANY_ROLE, ["myteam/general", "reviewer@example.com"])
    stack.write_config()
    await stack.start_sidecar()
    assert "Loaded access monitoring rules" in await stack.sidecar_log()
    _, posted = await announce(stack)
    assert posted == await channels(stack, "myteam/general", "reviewer@example.com")


async def test_r3_r4_r5_rules_that_are_not_for_the_plugin_or_are_gone_leave_it_to_the_static_path(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    stack = await routing_stack(make_stack, tmp_path)
    static, amr = await channels(stack, "myteam/town-square"), await channels(stack, "reviewer@example.com")
    await put_rule(stack, "slack", ANY_ROLE, ["reviewer2@example.com"], plugin="slack")  # R3
    assert (await announce(stack))[1] == static
    await put_rule(stack, "moves", ANY_ROLE, ["reviewer@example.com"])
    assert (await announce(stack))[1] == amr
    await put_rule(stack, "moves", ANY_ROLE, ["reviewer@example.com"], subjects=["someOtherKind"], force=True)  # R4
    assert (await announce(stack))[1] == static
    await put_rule(stack, "deleted", ANY_ROLE, ["reviewer@example.com"])
    assert (await announce(stack))[1] == amr
    await delete_rule(stack, "deleted")  # R5
    assert (await announce(stack))[1] == static


async def test_precedence_union_fallbacks_and_broken_rules(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = await routing_stack(make_stack, tmp_path)
    static = await channels(stack, "myteam/town-square")

    # R6: two matching rules sharing a channel: the union, one post per channel.
    await put_rule(stack, "a", ANY_ROLE, ["myteam/general", "reviewer@example.com"])
    await put_rule(stack, "b", ANY_ROLE, ["myteam/general", "reviewer2@example.com"])
    rid, posted = await announce(stack)
    assert posted == await channels(stack, "myteam/general", "reviewer@example.com", "reviewer2@example.com")
    assert len(roots(await stack.posts(), rid)) == 3
    await delete_rule(stack, "a")
    await delete_rule(stack, "b")

    # R7, R8: a matching rule without recipients, a rule whose condition is false.
    await put_rule(stack, "empty", ANY_ROLE, [])
    await put_rule(stack, "false", 'access_request.spec.roles.contains("auditor")', ["reviewer@example.com"])
    assert (await announce(stack))[1] == static
    await delete_rule(stack, "empty")

    # R9, R10 (fixed): a recipient of the wrong shape and one Mattermost does not know do not count.
    await put_rule(stack, "bad", ANY_ROLE, ["foo", "ghost@example.com"])
    assert (await announce(stack))[1] == static
    log = await stack.sidecar_log()
    assert "Failed to fetch plugin recipients based on Access monitoring rule recipients" in log
    assert "No recipient of the matching access monitoring rules can be resolved" in log
    await delete_rule(stack, "bad")

    # R15: a rule that fails to evaluate is warned about; the other matching rule decides.
    await put_rule(stack, "fails", "choose(option(false, true))", ["reviewer2@example.com"])
    await put_rule(stack, "works", ANY_ROLE, ["reviewer@example.com"])
    assert (await announce(stack))[1] == await channels(stack, "reviewer@example.com")
    assert "Failed to parse access monitoring notification rule" in await stack.sidecar_log()


async def test_r11_r19_suggested_reviewers_are_skipped_and_automatic_review_is_ignored(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    stack = await routing_stack(make_stack, tmp_path)
    await put_rule(stack, "reviewed", ANY_ROLE, ["reviewer@example.com"], review=True)  # R19
    _, posted = await announce(stack, reviewers=["reviewer2@example.com"])
    assert posted == await channels(stack, "reviewer@example.com")  # R11: reviewer2 gets no DM


TEAM = 'user.traits["team"].contains("example")'


async def test_r12_r14_conditions_see_the_requesters_traits(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = await routing_stack(make_stack, tmp_path)
    await put_rule(stack, "team", TEAM, ["reviewer@example.com"])
    assert (await announce(stack, "myuser"))[1] == await channels(stack, "reviewer@example.com")  # R12
    assert (await announce(stack, "requester@example.com"))[1] == await channels(stack, "myteam/town-square")  # R14


async def test_r13_without_user_read_the_traits_are_empty(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = await routing_stack(make_stack, tmp_path, plugin_roles=["plugin-base", "amr-reader"])
    await put_rule(stack, "team", TEAM, ["reviewer@example.com"])
    assert (await announce(stack, "myuser"))[1] == await channels(stack, "myteam/town-square")
    assert "Missing permissions to read user.traits, please add user.read to the associated role" in (
        await stack.sidecar_log())


async def test_r16_without_rule_read_the_plugin_routes_statically(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = await routing_stack(make_stack, tmp_path, plugin_roles=["plugin-base", "user-reader"])
    assert ("Failed to watch access_monitoring_rule events. Allow access_monitoring_rule read permissions in the "
            "plugin role.") in await stack.sidecar_log()
    await put_rule(stack, "ignored", ANY_ROLE, ["reviewer@example.com"])
    assert (await announce(stack))[1] == await channels(stack, "myteam/town-square")


async def test_r17_read_without_list_stops_the_start(make_stack: MakeStack, tmp_path: Path) -> None:
    stack = await routing_stack(make_stack, tmp_path, plugin_roles=["plugin-base", "amr-read-only"], sidecar=False)
    stack.write_config()
    sidecar = await stack.start_sidecar(wait_ready=False)
    assert await sidecar.wait(timeout=30) == 1
    log = await stack.sidecar_log()
    assert "initializing Access Monitoring Rule cache" in log
    assert "Plugin is ready" not in log


async def test_r20_an_announced_request_keeps_its_posts_whatever_the_rules_say_later(
    make_stack: MakeStack, tmp_path: Path
) -> None:
    stack = await routing_stack(make_stack, tmp_path)
    await put_rule(stack, "r20", ANY_ROLE, ["reviewer@example.com", "myteam/general"])
    rid, posted = await announce(stack)
    assert posted == await channels(stack, "reviewer@example.com", "myteam/general")
    await delete_rule(stack, "r20")
    await stack.tctl("reviewer@example.com", "review", rid, "--approve", "--reason", "fine")
    await wait_posts(stack, lambda p: all(edits(post) for post in roots(p, rid)))
    await stack.settled(rid)
    posts = await stack.posts()
    assert {post["channel_id"] for post in roots(posts, rid)} == posted
    for root in roots(posts, rid):
        assert len(replies(posts, root["id"])) == 1
    assert (await stack.plugin_data(rid))["resolution"] == "APPROVED"
