"""Fake Mattermost server: REST API v4, rate limiting, fault injection.

Run it: ``python -m fakes.mattermost serve [--listen 127.0.0.1:8065] [--seed FILE] [--rate-limit PER_SEC]
[--rate-burst N] [--max-post-length N] [--no-etags]``; it prints one JSON line
``{"url", "admin_token", "bot_token", "pid"}`` when ready and exits 0 on SIGTERM.
In-process: ``async with FakeMattermost(seed=..., rate_limit=...) as mm:`` (see `server.py`), with
``mm.url``, ``mm.admin_token``, ``mm.bot_token`` and the typed test face ``mm.control``.

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
- ``GET /fake/ephemeral``: ephemeral posts sent by button integrations.
- ``GET /fake/seed``: ids of seeded users, teams, channels and the tokens.
- ``POST /fake/reset``: back to the seed (data, log, faults, rate-limit buckets, dedup cache).

Documentation with working curl examples: docs/fake-mattermost.md.
"""
