"""`python -m fakes.teleport_auth serve` as a subprocess: start it, read its ready line, stop it (SIGTERM)."""

from __future__ import annotations

import json
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

SERVE_TIMEOUT_S = 20


def start_serve(state_dir: Path, *extra: str) -> subprocess.Popen[str]:
    """Start the fake Auth on free loopback ports."""
    cmd = [sys.executable, "-m", "fakes.teleport_auth", "serve", "--state-dir", str(state_dir)]
    cmd += ["--listen", "127.0.0.1:0", "--proxy-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_ready(proc: subprocess.Popen[str]) -> dict[str, Any]:
    """The ready line (addresses, cluster name, state directory)."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], SERVE_TIMEOUT_S)
    assert ready, "serve printed no ready line"
    line = proc.stdout.readline()
    assert line, f"serve exited: {proc.stderr.read() if proc.stderr else ''}"
    doc: dict[str, Any] = json.loads(line)
    return doc


def stop(proc: subprocess.Popen[str]) -> int:
    """SIGTERM and wait; the exit status. Closes the pipes (left open, they end as ResourceWarnings)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=SERVE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise
    finally:
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
