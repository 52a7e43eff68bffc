"""Start the fakes, the tbot emulator and the sidecar as separate processes.

Shared by the end-to-end tests, `make demo` and the benchmarks, so all three drive the components only
through their public interfaces (command lines, config files, the ready line they print).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any


class ProcessFailed(RuntimeError):
    """A managed process exited or did not become ready; the message carries the tail of its log."""


class ManagedProcess:
    """One child process: stdout lines are collected, stderr goes to a log file we can wait on.

    Readiness is either the first stdout line parsed as JSON (`ready="json"`, the fakes' convention) or
    a log line matching a regex (`ready="log"`, for the sidecar's "Plugin is ready").
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(os.environ if env is None else env)
        self.cwd = cwd
        self.stdout_lines: list[str] = []
        self._proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._line_added = asyncio.Event()

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self._require().pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the process has ended, else None."""
        return self._require().returncode

    def _require(self) -> asyncio.subprocess.Process:
        if self._proc is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self._proc

    async def start(self) -> None:
        """Spawn the process (stdout piped, stderr appended to the log file)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *self.argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        finally:
            log.close()
        self._reader = asyncio.create_task(self._read_stdout(), name=f"{self.name}-stdout")

    async def _read_stdout(self) -> None:
        stream = self._require().stdout
        assert stream is not None
        while line := await stream.readline():
            self.stdout_lines.append(line.decode("utf-8", "replace").rstrip("\n"))
            self._line_added.set()
        self._line_added.set()

    async def wait_json_line(self, timeout: float = 30.0) -> dict[str, Any]:
        """Wait for the first stdout line that parses as a JSON object and return it."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for line in self.stdout_lines[seen:]:
                    seen += 1
                    with contextlib.suppress(ValueError):
                        value = json.loads(line)
                        if isinstance(value, dict):
                            return value
                if self._require().returncode is not None or (self._reader and self._reader.done()):
                    raise ProcessFailed(self._failure("exited before printing its ready line"))
                self._line_added.clear()
                await self._line_added.wait()

    async def wait_log(self, pattern: str, timeout: float = 30.0, *, start: int = 0) -> str:
        """Wait until the log file (from byte offset `start`) has a line matching `pattern`; return it."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for line in self.read_log(start).splitlines():
                        if regex.search(line):
                            return line
                    if self._require().returncode is not None:
                        raise ProcessFailed(self._failure(f"exited before logging {pattern!r}"))
                    await asyncio.sleep(0.05)
        except TimeoutError:
            raise ProcessFailed(self._failure(f"did not log {pattern!r} within {timeout} s")) from None

    def read_log(self, start: int = 0) -> str:
        """The log file's text from byte offset `start`."""
        try:
            with self.log_path.open("rb") as f:
                f.seek(start)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_size(self) -> int:
        """Current size of the log file, to wait only for lines written after now."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.read_log().splitlines()[-30:])
        return f"{self.name} {what} (exit code {self._require().returncode}); log tail:\n{tail}"

    def send_signal(self, sig: int) -> None:
        """Deliver a signal to the child if it is still running."""
        proc = self._require()
        if proc.returncode is None:
            proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        """Wait for the child to exit and return its exit code."""
        async with asyncio.timeout(timeout):
            code = await self._require().wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                async with asyncio.timeout(5):
                    await self._reader
        return code

    async def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, then SIGKILL the whole process group if it does not exit within `timeout`."""
        if self._proc is None:
            return None
        if self._proc.returncode is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                return await self.wait(timeout)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self._proc.pid, signal.SIGKILL)
                return await self.wait(10)
        return await self.wait(10)


def python_module(module: str, *args: str) -> list[str]:
    """argv running `python -m module args...` with this interpreter."""
    return [sys.executable, "-m", module, *args]
