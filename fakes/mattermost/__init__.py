"""Fake Mattermost server: REST API v4, rate limiting, fault injection.

Run it: ``python -m fakes.mattermost serve [--listen 127.0.0.1:8065] [--seed FILE] [--rate-limit PER_SEC]
[--rate-burst N] [--max-post-length N] [--no-etags] [--allowed-untrusted-internal-connections HOSTS]
[--outgoing-integration-requests-timeout SECONDS]``; it prints one JSON line
``{"url", "admin_token", "bot_token", "pid"}`` when ready and exits 0 on SIGTERM.
In-process: ``async with FakeMattermost(seed=..., rate_limit=...) as mm:`` (see `server.py`), with
``mm.url``, ``mm.admin_token``, ``mm.bot_token`` and the typed test face ``mm.control``.

Interactive messages (`interactive_routes.py`): buttons in `props.attachments[].actions[]` are stored with
their `integration` and sent to clients without it (`attachments.py`); a click
(`POST /api/v4/posts/{post_id}/actions/{action_id}`, `actions.py`) POSTs Mattermost's exact body with an
ECDSA P-256 signed trigger id (`trigger.py`) to the integration, through the
`AllowedUntrustedInternalConnections` filter (`egress.py`; the default refuses 127.0.0.1, allow it with the
seed's ``[settings]``, the flag, ``ServerConfig(integrations=...)`` or ``PUT /fake/settings``), and applies
its `update` and `ephemeral_text`; `GET /api/v4/config/client?format=old` publishes the key
(`client_config.py`); dialogs open with a trigger id and are submitted by the user's client (`dialogs.py`).
The test face acts as any user through those routes (`driver.py`: ``await mm.control.click(...)``,
``await mm.control.submit_dialog(...)``) and records ephemerals, dialogs and integration calls.

Test-only admin routes (outside ``/api/v4``; ``Authorization: Bearer <admin token>`` required):

- ``GET /fake/requests`` (``?method=``, ``?route=`` filters), ``DELETE /fake/requests``: the request log,
  one entry per API call: ``method``, ``route`` (template such as ``/api/v4/posts/{post_id}``), ``path``,
  ``status`` (null when the connection was dropped), ``at`` (ms), ``user_id``, ``faults``, ``dropped``.
- ``GET /fake/faults``, ``POST /fake/faults``, ``DELETE /fake/faults[/{id}]``: fault rules
  ``{route, method, status, rate, latency_ms, outage, drop_after_commit, hang_ms, times}``
  (see `faults.FaultSpec`): injected error statuses at a rate, added latency, full outage (connection
  closed, nothing done), and "commit then drop" (the change is stored, the client sees the connection
  close, or after ``hang_ms`` a timeout).
- ``GET /fake/posts`` (``?channel_id=``): stored posts with their write history (create, update, patch,
  action), integrations not stripped; ``GET /fake/summary``: root posts, replies and edits per channel.
- ``GET /fake/ephemeral[s]`` (``?username=``), ``GET /fake/dialogs``, ``GET|DELETE /fake/integration-calls``:
  ephemeral posts per user, dialogs opened per user, calls made to integrations (body, status, outcome).
- ``POST /fake/click``, ``POST /fake/dialogs/submit``: act as a user through the real routes;
  ``POST /fake/tokens``, ``POST /fake/users/active``, ``POST /fake/triggers``, ``POST /fake/cookies``,
  ``GET|PUT /fake/settings``, ``POST /fake/signing-key/rotate``: see `control.py`.
- ``GET /fake/seed``: ids of seeded users, teams, channels and the tokens.
- ``POST /fake/reset``: back to the seed (data, log, faults, rate-limit buckets, dedup cache).

Documentation with working curl examples: docs/fake-mattermost.md.
"""
