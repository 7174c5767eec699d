"""Run a set of child processes, restart the ones that die, and stop them all together.

Contract: ``run()`` starts every child in order, then watches them until SIGINT or SIGTERM;
a child that exits is logged and started again after a back-off. On stop, children get SIGTERM
in reverse order, then SIGKILL after ``grace`` seconds. Children also get SIGTERM from the
kernel if the supervisor itself dies (PR_SET_PDEATHSIG), so none is ever left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger("herd.serve")

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # Off Linux there is no prctl; the supervisor's own shutdown still stops its children.
    with contextlib.suppress(OSError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    next_start: float = 0.0
    # Infrastructure the others need to shut down cleanly (the broker) stops after them.
    stop_last: bool = False

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.argv,
            env={**os.environ, **self.env},
            preexec_fn=_die_with_parent,
            start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
        )
        self.started_at = time.monotonic()
        log.info("started %s (pid %d)", self.name, self.process.pid)

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def backoff(self) -> float:
        # A child that ran a minute or more starts again at once; a crash loop slows down.
        if time.monotonic() - self.started_at > 60:
            self.restarts = 0
        self.restarts += 1
        return float(min(30, 2 ** (self.restarts - 1) - 1))


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        *,
        grace: float = 10.0,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        self.children = children
        self.grace = grace
        self._stopping = False
        self._on_tick = on_tick

    def request_stop(self, signum: int, _frame: object) -> None:
        log.info("received %s, stopping", signal.Signals(signum).name)
        self._stopping = True

    def run(self) -> None:
        signal.signal(signal.SIGINT, self.request_stop)
        signal.signal(signal.SIGTERM, self.request_stop)
        try:
            for child in self.children:
                if child.process is None:  # some are started early, to wait on them
                    child.start()
            while not self._stopping:
                self._watch()
                if self._on_tick:
                    self._on_tick()
                time.sleep(0.25)
        finally:
            self.stop_all()

    def _watch(self) -> None:
        now = time.monotonic()
        for child in self.children:
            code = child.exited()
            if code is None:
                continue
            if child.next_start == 0.0:
                delay = child.backoff()
                child.next_start = now + delay
                log.warning("%s exited with %s; restarting in %.0fs", child.name, code, delay)
            if now >= child.next_start:
                child.next_start = 0.0
                child.start()

    def stop_all(self) -> None:
        self._stop([c for c in reversed(self.children) if not c.stop_last])
        self._stop([c for c in reversed(self.children) if c.stop_last])
        log.info("stopped")

    def _stop(self, children: list[Child]) -> None:
        running = [c for c in children if c.process is not None and c.exited() is None]
        for child in running:
            assert child.process is not None
            child.process.terminate()
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0fs; killing it", child.name, self.grace)
                child.process.kill()
                child.process.wait()
