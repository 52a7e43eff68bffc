"""The CLI: `serve` as a subprocess (ready line, SIGTERM); `tctl` is no longer one of its commands (fakes/tctl.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fakes.teleport_auth.__main__ import main
from tests.fakes.teleport_auth.processes import SERVE_TIMEOUT_S, read_ready, start_serve, stop


def test_serve_prints_ready_line_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = start_serve(tmp_path / "s", "--edition", "enterprise")
    try:
        ready = read_ready(proc)
        assert set(ready) == {"auth_addr", "proxy_addr", "admin_addr", "cluster_name", "state_dir"}
        assert ready["cluster_name"] == "teleport.example.com"
        assert all(not ready[k].endswith(":0") for k in ("auth_addr", "proxy_addr", "admin_addr"))
        assert (tmp_path / "s" / "users.toml").is_file()
    finally:
        status = stop(proc)
    assert status == 0


def test_serve_rejects_a_bad_seed(tmp_path: Path) -> None:
    seed = tmp_path / "seed.toml"
    seed.write_text("[users.u]\nroles = ['ghost']\n")
    proc = start_serve(tmp_path / "s", "--seed", str(seed))
    try:
        assert proc.wait(timeout=SERVE_TIMEOUT_S) == 1
        assert proc.stderr is not None and "undefined role 'ghost'" in proc.stderr.read()
    finally:
        stop(proc)


def test_tctl_is_not_a_command_of_the_fake_auth(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["tctl", "--addr", "127.0.0.1:1", "--identity", "x", "requests", "ls"])
    assert exited.value.code == 2
    assert "invalid choice: 'tctl'" in capsys.readouterr().err
