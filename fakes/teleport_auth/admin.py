"""The fake Auth's admin HTTP API (aiohttp, loopback, JSON) for fault injection and test assertions.

Routes (request bodies are JSON objects; errors answer 400/404 with {"error": "..."}):

    GET  /health                       {"status": "ok", "cluster_name": ...}
    GET  /state                        {"requests": [...], "plugin_data": [...], "access_monitoring_rules": [...],
                                       "watchers": N, "faults": {...}}
    GET  /requests                     every stored access request (protobuf JSON, field names as in the proto)
    GET  /requests/{id}                one request, 404 when unknown
    POST /requests/{id}/expire         expire the request now (deleted, DELETE event sent); 404 when unknown
    GET  /plugin-data                  every plugin data record (kept after its request is deleted)
    GET  /plugin-data/{id}             the records of one request (a list, empty when none)
    GET  /watchers                     {"count": N} live WatchEvents streams
    GET  /watch-events/{id}            {"request_id": ..., "emitted": N}: events about the request handed to watch
                                       streams so far, summed over every stream (queued events a stream never
                                       sent, because it closed first, are not counted); 0 for an unknown id
    GET  /access-monitoring-rules      every stored rule, in name order (protobuf JSON, proto field names)
    GET  /access-monitoring-rules/{name}
                                       one rule, 404 when unknown
    POST /access-monitoring-rules      body: a rule in Teleport's resource shape ({"kind": "access_monitoring_rule",
                                       "version": "v1", "metadata": {"name": ...}, "spec": {...}}, the YAML of
                                       `tctl get` as JSON): upsert it with Teleport's checks (400 with Teleport's
                                       message when invalid) and publish a PUT -> the stored rule (with revision)
    DELETE /access-monitoring-rules/{name}
                                       delete it and publish a DELETE (as a TTL expiry does); 404 when unknown
    GET  /access-monitoring-rules/{name}/watch-events
                                       {"name": ..., "emitted": N}: as /watch-events/{id}, for a rule's events
    GET  /users                        every user: [{"name", "roles", "traits", "bot"}], in name order
    GET  /users/{name}                 one user, 404 when unknown
    PUT  /users/{name}                 {"roles": [...], "traits": {key: [values]}, "bot": false}: create or replace
                                       a user (its roles must exist) -> the user
    DELETE /users/{name}               delete a user (as an expired SSO user's record goes away); 404 when unknown
    GET  /users/{name}/traits          {"name": ..., "traits": {key: [values]}}; 404 for an unknown user
    PUT  /users/{name}/traits          {"traits": {key: [values]}}: replace the user's traits (GetUser, ListUsers)
    GET  /resources                    every node, app, database and Kubernetes cluster (the seed's shape)
    POST /resources                    one resource in the seed's shape ({"kind": "node", "name": ..., "hostname":
                                       ..., "labels": {...}}): create or replace it -> the resource
    DELETE /resources/{kind}/{name}    delete a resource; 404 when unknown
    GET  /audit/reviews                the `access_request.review` events of accepted reviews, oldest first:
                                       [{"event", "code", "time", "id", "reviewer", "submitted_by", "proposed_state",
                                       "state", "reason"}]; `?request=ID` keeps one request's
    GET  /settings                     {"admin_action_mfa": B, "legacy_review_api": B}
    POST /settings/admin-action-mfa    {"enabled": true}: admin actions (reviews, approve/deny, delete) need MFA, so
                                       every caller but a Machine ID bot is refused -> the settings
    POST /settings/legacy-review-api   {"enabled": true}: behave as an Auth older than reviews on behalf of others
                                       (AccessReview fields 11/12 and UserFilter fields 2/3 ignored) -> the settings
    POST /faults/unfiltered-rules      {"enabled": true}: ListAccessMonitoringRulesWithFilter ignores its filter, as
                                       Teleport does when its cache is unhealthy, until called with false or the
                                       faults are cleared -> {"unfiltered_rules": B}
    POST /faults/drop-watchers         close every watch stream now with UNAVAILABLE -> {"dropped": N}
    POST /faults/lose-events           {"enabled": true}: from now on drop every watch event instead of sending
                                       it (streams stay open, nothing counts as emitted) until it is called with
                                       false or the faults are cleared -> {"losing_events": B, "lost_events": N}
    POST /faults/refuse                {"seconds": S}: fail every RPC with UNAVAILABLE for S seconds and close
                                       all watch streams now; S = 0 ends the window
    POST /faults/latency               {"seconds": S, "method": "Ping"}: delay calls ("method" omitted = all calls;
                                       S = 0 removes the delay)
    POST /faults/fail                  {"method": "UpdatePluginData", "count": N, "code": "UNAVAILABLE",
                                       "message": "..."}: fail the next N calls of the method ("*" = any method)
                                       with the gRPC status code name
    POST /faults/clear                 remove every fault (including lose-events)
    GET  /faults                       the current fault settings, with "losing_events", "lost_events" and
                                       "unfiltered_rules"

Method names are the RPC names without the service (`Ping`, `WatchEvents`, `GetPluginData`, `GetUser`, ...).
"""

from __future__ import annotations

import json
from typing import Any

import grpc
from aiohttp import web
from google.protobuf import json_format
from google.protobuf.message import Message

from sidecar.teleport.wire import access_monitoring_rules_pb2 as amr_pb2

from .errors import BadParameter, NotFound
from .faults import ANY_METHOD, Faults
from .seed import UserDef
from .seed_resources import ResourceDef, parse_resource
from .seed_toml import SeedError
from .state import AuthState


def message_json(msg: Message) -> dict[str, Any]:
    """A protobuf message as JSON with the proto's own field names."""
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


class _BadRequest(Exception):
    pass


async def _body(request: web.Request) -> dict[str, Any]:
    if not request.can_read_body:
        return {}
    try:
        value = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _BadRequest(f"request body is not valid JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise _BadRequest("request body must be a JSON object")
    return value


def _number(body: dict[str, Any], key: str, default: float | None = None) -> float:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise _BadRequest(f'"{key}" must be a non-negative number')
    return float(value)


def _flag(body: dict[str, Any], key: str, default: bool) -> bool:
    value = body.get(key, default)
    if not isinstance(value, bool):
        raise _BadRequest(f'"{key}" must be true or false')
    return value


def _string(body: dict[str, Any], key: str, default: str) -> str:
    value = body.get(key, default)
    if not isinstance(value, str) or not value:
        raise _BadRequest(f'"{key}" must be a non-empty string')
    return value


class AdminAPI:
    """Builds the aiohttp application over the server's state and faults."""

    def __init__(self, state: AuthState, faults: Faults, cluster_name: str) -> None:
        self._state = state
        self._faults = faults
        self._cluster_name = cluster_name

    def app(self) -> web.Application:
        """The aiohttp application with every route."""
        app = web.Application(middlewares=[self._errors])
        r = app.router
        r.add_get("/health", self._health)
        r.add_get("/state", self._full_state)
        r.add_get("/requests", self._requests)
        r.add_get("/requests/{id}", self._request)
        r.add_post("/requests/{id}/expire", self._expire)
        r.add_get("/plugin-data", self._plugin_data)
        r.add_get("/plugin-data/{id}", self._plugin_data_of)
        r.add_get("/watchers", self._watchers)
        r.add_get("/watch-events/{id}", self._watch_events)
        r.add_get("/access-monitoring-rules", self._rules)
        r.add_post("/access-monitoring-rules", self._put_rule)
        r.add_get("/access-monitoring-rules/{name}", self._rule)
        r.add_delete("/access-monitoring-rules/{name}", self._delete_rule)
        r.add_get("/access-monitoring-rules/{name}/watch-events", self._rule_watch_events)
        r.add_get("/users", self._users)
        r.add_get("/users/{name}", self._user)
        r.add_put("/users/{name}", self._put_user)
        r.add_delete("/users/{name}", self._delete_user)
        r.add_get("/users/{name}/traits", self._traits)
        r.add_put("/users/{name}/traits", self._set_traits)
        r.add_get("/resources", self._resources)
        r.add_post("/resources", self._put_resource)
        r.add_delete("/resources/{kind}/{name}", self._delete_resource)
        r.add_get("/audit/reviews", self._audit_reviews)
        r.add_get("/settings", self._settings)
        r.add_post("/settings/admin-action-mfa", self._admin_action_mfa)
        r.add_post("/settings/legacy-review-api", self._legacy_review_api)
        r.add_post("/faults/unfiltered-rules", self._unfiltered_rules)
        r.add_get("/faults", self._fault_state)
        r.add_post("/faults/drop-watchers", self._drop)
        r.add_post("/faults/lose-events", self._lose_events)
        r.add_post("/faults/refuse", self._refuse)
        r.add_post("/faults/latency", self._latency)
        r.add_post("/faults/fail", self._fail)
        r.add_post("/faults/clear", self._clear)
        return app

    @web.middleware
    async def _errors(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            response: web.StreamResponse = await handler(request)
            return response
        except _BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except BadParameter as exc:
            return web.json_response({"error": exc.message}, status=400)
        except SeedError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        except NotFound as exc:
            return web.json_response({"error": exc.message}, status=404)

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "cluster_name": self._cluster_name})

    async def _full_state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "requests": [message_json(r) for r in self._state.all_requests()],
                "plugin_data": [message_json(p) for p in self._state.all_plugin_data()],
                "access_monitoring_rules": [message_json(r) for r in self._state.rules.store.all()],
                "watchers": self._state.fanout.count,
                "faults": self._fault_snapshot(),
            }
        )

    async def _requests(self, request: web.Request) -> web.Response:
        return web.json_response([message_json(r) for r in self._state.all_requests()])

    async def _request(self, request: web.Request) -> web.Response:
        return web.json_response(message_json(self._state.get_request(request.match_info["id"])))

    async def _expire(self, request: web.Request) -> web.Response:
        request_id = request.match_info["id"]
        self._state.expire_request(request_id)
        return web.json_response({"expired": request_id})

    async def _plugin_data(self, request: web.Request) -> web.Response:
        return web.json_response([message_json(p) for p in self._state.all_plugin_data()])

    async def _plugin_data_of(self, request: web.Request) -> web.Response:
        request_id = request.match_info["id"]
        records = [p for p in self._state.all_plugin_data() if p.Metadata.Name == request_id]
        return web.json_response([message_json(p) for p in records])

    async def _watchers(self, request: web.Request) -> web.Response:
        return web.json_response({"count": self._state.fanout.count})

    async def _watch_events(self, request: web.Request) -> web.Response:
        request_id = request.match_info["id"]
        return web.json_response({"request_id": request_id, "emitted": self._state.fanout.emitted(request_id)})

    async def _rules(self, request: web.Request) -> web.Response:
        return web.json_response([message_json(r) for r in self._state.rules.store.all()])

    async def _rule(self, request: web.Request) -> web.Response:
        return web.json_response(message_json(self._state.rules.store.get(request.match_info["name"])))

    async def _put_rule(self, request: web.Request) -> web.Response:
        rule = amr_pb2.AccessMonitoringRule()
        try:
            # The resource's JSON names are the proto field names, so protobuf's JSON parser reads it as is.
            json_format.ParseDict(await _body(request), rule)
        except json_format.ParseError as exc:
            raise _BadRequest(f"not an access monitoring rule: {exc}") from exc
        return web.json_response(message_json(self._state.rules.put(rule)))

    async def _delete_rule(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self._state.rules.remove(name)
        return web.json_response({"deleted": name})

    async def _rule_watch_events(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        return web.json_response({"name": name, "emitted": self._state.fanout.emitted_rule(name)})

    async def _users(self, request: web.Request) -> web.Response:
        return web.json_response([_user_json(u) for u in self._state.users.all()])

    async def _user(self, request: web.Request) -> web.Response:
        return web.json_response(_user_json(self._state.users.get(request.match_info["name"])))

    async def _put_user(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _body(request)
        roles = body.get("roles")
        if not isinstance(roles, list) or not roles or not all(isinstance(r, str) and r for r in roles):
            raise _BadRequest('"roles" must be a non-empty list of role names')
        traits = {key: tuple(values) for key, values in _traits_of(body).items()}
        user = UserDef(name=name, roles=tuple(roles), traits=traits, bot=_flag(body, "bot", False))
        self._state.put_user(user)
        return web.json_response(_user_json(user))

    async def _delete_user(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        self._state.users.delete(name)
        return web.json_response({"deleted": name})

    async def _resources(self, request: web.Request) -> web.Response:
        return web.json_response([_resource_json(r) for r in self._state.inventory.all()])

    async def _put_resource(self, request: web.Request) -> web.Response:
        resource = parse_resource(await _body(request), "resource")
        self._state.inventory.put(resource)
        return web.json_response(_resource_json(resource))

    async def _delete_resource(self, request: web.Request) -> web.Response:
        kind, name = request.match_info["kind"], request.match_info["name"]
        self._state.inventory.remove(kind, name)
        return web.json_response({"deleted": f"{kind}/{name}"})

    async def _audit_reviews(self, request: web.Request) -> web.Response:
        wanted = request.query.get("request", "")
        entries = [e.to_json() for e in self._state.reviews.audit if not wanted or e.request_id == wanted]
        return web.json_response(entries)

    def _settings_json(self) -> dict[str, bool]:
        desk = self._state.reviews
        return {"admin_action_mfa": desk.admin_action_mfa, "legacy_review_api": desk.legacy}

    async def _settings(self, request: web.Request) -> web.Response:
        return web.json_response(self._settings_json())

    async def _admin_action_mfa(self, request: web.Request) -> web.Response:
        self._state.reviews.admin_action_mfa = _flag(await _body(request), "enabled", True)
        return web.json_response(self._settings_json())

    async def _legacy_review_api(self, request: web.Request) -> web.Response:
        self._state.reviews.legacy = _flag(await _body(request), "enabled", True)
        return web.json_response(self._settings_json())

    async def _traits(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        traits = {key: list(values) for key, values in self._state.user_traits(name).items()}
        return web.json_response({"name": name, "traits": traits})

    async def _set_traits(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await _body(request)
        if "traits" not in body:
            raise _BadRequest('"traits" must be an object of string lists')
        self._state.set_user_traits(name, _traits_of(body))
        return await self._traits(request)

    async def _unfiltered_rules(self, request: web.Request) -> web.Response:
        rules = self._state.rules
        rules.ignore_filter = _flag(await _body(request), "enabled", True)
        return web.json_response({"unfiltered_rules": rules.ignore_filter})

    def _fault_snapshot(self) -> dict[str, object]:
        fanout = self._state.fanout
        return {
            **self._faults.snapshot(),
            "losing_events": fanout.losing_events,
            "lost_events": fanout.lost,
            "unfiltered_rules": self._state.rules.ignore_filter,
        }

    async def _fault_state(self, request: web.Request) -> web.Response:
        return web.json_response(self._fault_snapshot())

    async def _drop(self, request: web.Request) -> web.Response:
        dropped = self._state.fanout.drop_all("watch stream dropped by the admin API")
        return web.json_response({"dropped": dropped})

    async def _lose_events(self, request: web.Request) -> web.Response:
        fanout = self._state.fanout
        fanout.losing_events = _flag(await _body(request), "enabled", True)
        return web.json_response({"losing_events": fanout.losing_events, "lost_events": fanout.lost})

    async def _refuse(self, request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = _number(body, "seconds")
        self._faults.refuse_for(seconds)
        dropped = self._state.fanout.drop_all("auth server is refusing connections") if seconds > 0 else 0
        return web.json_response({"refusing_s": seconds, "dropped": dropped})

    async def _latency(self, request: web.Request) -> web.Response:
        body = await _body(request)
        seconds = _number(body, "seconds")
        method = _string(body, "method", ANY_METHOD)
        self._faults.set_latency(seconds, method)
        return web.json_response(self._fault_snapshot())

    async def _fail(self, request: web.Request) -> web.Response:
        body = await _body(request)
        method = _string(body, "method", ANY_METHOD)
        count = _number(body, "count", 1)
        if count < 1 or count != int(count):
            raise _BadRequest('"count" must be a positive integer')
        code_name = _string(body, "code", "UNAVAILABLE").upper()
        try:
            code = grpc.StatusCode[code_name]
        except KeyError:
            raise _BadRequest(f"unknown gRPC status code {code_name!r}") from None
        if code == grpc.StatusCode.OK:
            raise _BadRequest("code OK is not a failure")
        message = _string(body, "message", f"injected {code_name} failure")
        self._faults.fail_next(method, int(count), code, message)
        return web.json_response(self._fault_snapshot())

    async def _clear(self, request: web.Request) -> web.Response:
        self._faults.clear()
        self._state.fanout.losing_events = False
        self._state.rules.ignore_filter = False
        return web.json_response(self._fault_snapshot())


def _traits_of(body: dict[str, Any]) -> dict[str, list[str]]:
    traits = body.get("traits", {})
    if not isinstance(traits, dict) or not all(
        isinstance(values, list) and all(isinstance(v, str) for v in values) for values in traits.values()
    ):
        raise _BadRequest('"traits" must be an object of string lists')
    return traits


def _user_json(user: UserDef) -> dict[str, Any]:
    traits = {key: list(values) for key, values in user.traits.items()}
    return {"name": user.name, "roles": list(user.roles), "traits": traits, "bot": user.bot}


def _resource_json(resource: ResourceDef) -> dict[str, Any]:
    fields = {"description", "hostname", "addr", "uri", "public_addr", "protocol"}
    out: dict[str, Any] = {"kind": resource.kind, "name": resource.name, "labels": dict(resource.labels)}
    out.update({key: getattr(resource, key) for key in sorted(fields) if getattr(resource, key)})
    return out
