"""Where the sidecar's time goes: py-spy attached to the sidecar process during a phase (`--profile`).

py-spy is not a dependency: `--profile` uses the `py-spy` found on PATH (or $PY_SPY), and says so when there is
none (`pip install py-spy`). It samples the process from outside (no code of ours runs in the sidecar) and
writes collapsed stacks of the samples that held the GIL (Python work, not waiting); `summarize` turns them into
the functions the samples were in (self) and the sidecar functions they passed through (inclusive), as shares.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import re
import shutil
import signal
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*)\)$")
_OURS = re.compile(r"^.*/((?:sidecar|fakes|bench)/)")
_LIBRARY = re.compile(r"^.*/(?:site-packages|lib/python3\.\d+)/")


def find_py_spy() -> str | None:
    """The py-spy executable to use, or None."""
    return os.environ.get("PY_SPY") or shutil.which("py-spy")


def _frame_name(frame: str) -> str:
    """`func (/abs/path/sidecar/x.py)` → `func (sidecar/x.py)`; libraries lose their site-packages prefix."""
    found = _FRAME.match(frame.strip())
    if not found:
        return frame.strip()
    path = _LIBRARY.sub("", _OURS.sub(r"\1", found.group("file")))
    return f"{found.group('func')} ({path})"


def summarize(lines: Iterable[str], top: int = 12) -> list[str]:
    """Summary lines from py-spy's raw (collapsed) output: `frame;frame;... count` per distinct stack."""
    own: collections.Counter[str] = collections.Counter()
    through: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";")]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for name in set(frames):
            if name.endswith(".py)") and "(sidecar/" in name:
                through[name] += count
    if not total:
        return ["no samples"]
    out = [f"{total} samples (100 a second while the sidecar held the GIL); self time:"]
    out += [f"  {n / total:6.1%}  {name}" for name, n in own.most_common(top)]
    out.append("time in (inclusive), sidecar functions:")
    out += [f"  {n / total:6.1%}  {name}" for name, n in through.most_common(2 * top)]
    return out


@contextlib.asynccontextmanager
async def profiled(pid: int, output: Path, py_spy: str) -> AsyncIterator[Path]:
    """Record `pid` with py-spy while the block runs; the collapsed stacks are in `output` afterwards."""
    output.parent.mkdir(parents=True, exist_ok=True)
    proc = await asyncio.create_subprocess_exec(
        py_spy, "record", "--pid", str(pid), "--rate", "100", "--format", "raw", "--nolineno", "--gil",
        "--output", str(output), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        await asyncio.sleep(0.5)  # py-spy attaches
        yield output
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
            try:
                async with asyncio.timeout(20):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
