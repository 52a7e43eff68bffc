"""`make demo` must keep working: it is one of the README's two set-up commands."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def test_demo_walks_a_request_to_approved_and_stops_everything() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tools.demo", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        stdin=asyncio.subprocess.DEVNULL,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    text = out.decode()
    assert proc.returncode == 0, text + err.decode()
    for stage in ("1. myuser requests", "2. reviewer@example.com approves", "3. reviewer2@example.com approves"):
        assert stage in text
    assert "⏳ PENDING" in text and "✅ APPROVED" in text
    assert "reviewer2@example.com reviewed the request" in text
    assert "resolution      APPROVED" in text
    assert "7. The sidecar restarts with [review]" in text and "[ Approve ]  [ Deny ]" in text
    assert "was recorded in Teleport as `reviewer2@example.com`" in text
    assert "reviewer reviewer2@example.com  submitted_by access-plugin   state APPROVED" in text
    assert "every process has been stopped" in text
