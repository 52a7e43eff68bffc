"""`ContainerProcess`: a component of `fakes.container_stack.ContainerStack`, driven like a process.

The container counterpart of `fakes.launch.ManagedProcess`: start, ready line, logs, signals, exit code, stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from fakes.launch import ProcessFailed
from fakes.stack import StackError

if TYPE_CHECKING:  # compose's test runner has no Docker libraries
    from testcontainers.core.container import DockerContainer


class ContainerProcess:
    """One running container of the stack, with the few process-like operations the tests use.

    `stdout_lines` are the container's stdout lines (the fakes' JSON lines); `read_log()` is its stderr, where
    every component logs.
    """

    def __init__(self, name: str, container: DockerContainer, log_path: Path) -> None:
        self.name = name
        self.container = container
        self.log_path = log_path
        self.exit_code: int | None = None
        self.removed = False

    async def start(self) -> None:
        """Create and start the container."""
        await asyncio.to_thread(self.container.start)

    def _logs(self, *, stdout: bool) -> str:
        raw = self.container.get_wrapped_container().logs(stdout=stdout, stderr=not stdout)
        return cast(bytes, raw).decode("utf-8", "replace")

    @property
    def stdout_lines(self) -> list[str]:
        """Every line the container has written to stdout so far."""
        return self._logs(stdout=True).splitlines()

    def read_stdout(self) -> str:
        """Everything the container has written to stdout so far."""
        return self._logs(stdout=True)

    def read_log(self) -> str:
        """Everything the container has written to stderr so far."""
        return self._logs(stdout=False)

    def running(self) -> bool:
        """Whether the container is still running."""
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        return bool(wrapped.status == "running")

    def host_port(self, port: int) -> int:
        """The 127.0.0.1 port Docker published for the container's TCP `port`."""
        wrapped = self.container.get_wrapped_container()
        wrapped.reload()
        bindings = wrapped.attrs["NetworkSettings"]["Ports"].get(f"{port}/tcp") or []
        for binding in bindings:
            if binding.get("HostIp") in ("127.0.0.1", ""):
                return int(binding["HostPort"])
        raise StackError(f"{self.name}: port {port} is not published on 127.0.0.1")

    async def wait_json_line(self, timeout: float = 60.0) -> dict[str, Any]:
        """Wait for the first stdout line that parses as a JSON object and return it."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for line in await asyncio.to_thread(lambda: self.stdout_lines):
                        with contextlib.suppress(ValueError):
                            value = json.loads(line)
                            if isinstance(value, dict):
                                return value
                    if not await asyncio.to_thread(self.running):
                        raise ProcessFailed(self._failure("exited before printing its ready line"))
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise ProcessFailed(self._failure(f"printed no ready line within {timeout} s")) from None

    async def wait_log(self, pattern: str, timeout: float = 60.0) -> str:
        """Wait until stderr has a line matching `pattern`; return it."""
        regex = re.compile(pattern)
        try:
            async with asyncio.timeout(timeout):
                while True:
                    for line in (await asyncio.to_thread(self.read_log)).splitlines():
                        if regex.search(line):
                            return line
                    if not await asyncio.to_thread(self.running):
                        raise ProcessFailed(self._failure(f"exited before logging {pattern!r}"))
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise ProcessFailed(self._failure(f"did not log {pattern!r} within {timeout} s")) from None

    def _failure(self, what: str) -> str:
        tail = "\n".join(self.read_log().splitlines()[-30:])
        return f"{self.name} container {what}; log tail:\n{tail}"

    @property
    def returncode(self) -> int | None:
        """The exit code once the container has exited, else None."""
        if self.exit_code is None and not self.removed and not self.running():
            self.exit_code = int(self.container.get_wrapped_container().wait(timeout=10)["StatusCode"])
        return self.exit_code

    def send_signal(self, sig: int) -> None:
        """Deliver a signal to the container's main process (the component itself: it is PID 1)."""
        if self.running():
            self.container.get_wrapped_container().kill(signal=int(sig))

    async def wait(self, timeout: float) -> int:
        """Wait for the container to exit and return its exit code (TimeoutError after `timeout` s)."""
        wrapped = self.container.get_wrapped_container()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    if not await asyncio.to_thread(self.running):
                        break
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise TimeoutError(f"{self.name} container still running after {timeout} s") from None
        result = await asyncio.to_thread(wrapped.wait, timeout=10)
        self.exit_code = int(result["StatusCode"])
        return self.exit_code

    async def stop(self, timeout: int = 20) -> int | None:
        """SIGTERM (SIGKILL after `timeout` s), keep the logs in `log_path`, remove the container; exit code."""
        if self.removed:
            return self.exit_code
        try:
            wrapped = self.container.get_wrapped_container()
        except Exception:  # never created: nothing to stop
            self.removed = True
            return None
        try:
            await asyncio.to_thread(wrapped.stop, timeout=timeout)
            await self.wait(30)
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self.log_path.write_text(
                f"--- stdout\n{await asyncio.to_thread(self._logs, stdout=True)}"
                f"--- stderr\n{await asyncio.to_thread(self.read_log)}"
            )
        finally:
            self.removed = True
            await asyncio.to_thread(self.container.stop)  # removes the container (force) and its anonymous volumes
        return self.exit_code
