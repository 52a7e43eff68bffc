"""Health and metrics: the Prometheus metrics, the readiness checks and the HTTP listener that serves them.

`Recorder` implements the `sidecar.domain.telemetry.Telemetry` port over `Metrics` and `Readiness`;
`HealthServer` serves `/livez`, `/readyz` and `/metrics`; `check_reachability` is the periodic Mattermost check.
Used only when `[health] listen_addr` is set (sidecar/app.py wires it).
"""
