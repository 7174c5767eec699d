"""``herd run MODEL [PROMPT]``: talk to a model from the terminal, the way ``ollama run`` does.

With a prompt (or text piped on stdin) it prints one streamed answer and exits; with neither, on
a terminal, it opens a chat (``/bye`` or Ctrl-D leaves, ``/clear`` forgets the conversation).
Everything goes through the server's Ollama API at ``HERD_HOST``, token by token. Ctrl-C stops an
answer as it streams: the connection closes, and the server cancels the generation on the
worker as it does for any client that leaves.
"""

from __future__ import annotations

import contextlib
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Generator
from typing import Any, Literal, TextIO, TypedDict

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from inference_app.ollama.bodies import GenerationObject
from project.durations import parse_duration
from project.json_types import JsonObject

# The exit status of a command stopped by Ctrl-C, as a shell reports it (128 + SIGINT).
INTERRUPTED = 130

HELP = """Available commands:
  /clear   forget the conversation so far
  /bye     leave
  /?       this help
"""


def server_url(host: str) -> str:
    """``HERD_HOST`` as a URL: ``0.0.0.0:11434`` is reached on the loopback address."""
    if host.startswith(("http://", "https://")):
        return host.rstrip("/")
    address, _, port = host.rpartition(":")
    if address in ("0.0.0.0", "", "::", "[::]"):
        address = "127.0.0.1"
    return f"http://{address}:{port}"


class Turn(TypedDict):
    role: Literal["user", "assistant"]
    content: str


class RequestOptions(TypedDict, total=False):
    """What ``herd run`` adds to each ``/api/chat`` body."""

    keep_alive: float
    format: str
    options: JsonObject


class ChatClient:
    """Streams ``/api/chat`` answers; raises CommandError with the server's own message."""

    def __init__(self, base_url: str, model: str, options: RequestOptions) -> None:
        self.base_url = base_url
        self.model = model
        self.options = options

    def stream(self, messages: list[Turn]) -> Generator[GenerationObject, None, None]:
        body = json.dumps({"model": self.model, "messages": messages, **self.options}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/api/chat",
            data=body,
            headers={"content-type": "application/json"},
            method="POST",
        )
        try:
            response = urllib.request.urlopen(request, timeout=600)
        except urllib.error.HTTPError as exc:
            raise CommandError(_error_text(exc.read()) or str(exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            raise CommandError(
                f"could not reach Herd at {self.base_url} ({exc}): is `herd serve` running?"
            ) from None
        with response:
            for line in response:
                if not line.strip():
                    continue
                chunk = json.loads(line)
                if "error" in chunk:
                    raise CommandError(chunk["error"])
                answer: GenerationObject = chunk
                yield answer


def parse_settings(pairs: list[str]) -> JsonObject:
    """``["num_predict=64", "stop=###"]`` -> ``{"num_predict": 64, "stop": "###"}``: values
    are read as JSON where they parse (numbers, booleans, lists), else kept as text."""
    parsed: JsonObject = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CommandError(f"--set: expected OPTION=VALUE, got {pair!r}")
        try:
            parsed[key.strip()] = json.loads(value)
        except ValueError:
            parsed[key.strip()] = value
    return parsed


def _error_text(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", errors="replace").strip()


class Command(BaseCommand):
    help = "Chat with a model in the terminal, or print one answer to PROMPT."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("model")
        parser.add_argument("prompt", nargs="*", help="answer this and exit")
        parser.add_argument("--keepalive", help="how long the model stays loaded (e.g. 5m)")
        parser.add_argument("--format", choices=("json",), help="answer in JSON")
        parser.add_argument("--verbose", action="store_true", help="print timings afterwards")
        parser.add_argument(
            "--set",
            action="append",
            default=[],
            metavar="OPTION=VALUE",
            help="a model option, as /set parameter does in ollama (num_predict=64)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        request_options: RequestOptions = {}
        if options["keepalive"]:
            try:
                request_options["keep_alive"] = parse_duration(options["keepalive"])
            except ValueError as exc:
                raise CommandError(f"--keepalive: {exc}") from None
        if options["format"]:
            request_options["format"] = options["format"]
        if options["set"]:
            request_options["options"] = parse_settings(options["set"])
        client = ChatClient(server_url(settings.HERD_HOST), options["model"], request_options)
        prompt = " ".join(options["prompt"])
        stdin: TextIO = sys.stdin
        if not stdin.isatty():
            piped = stdin.read()
            prompt = f"{piped}\n{prompt}".strip() if prompt else piped.strip()
            if not prompt:
                raise CommandError("nothing to answer: give a prompt or pipe one in")
        if prompt:
            try:
                self._answer(client, [{"role": "user", "content": prompt}], options["verbose"])
            except KeyboardInterrupt:
                self.stdout.write("")
                raise SystemExit(INTERRUPTED) from None
            return
        self._chat(client, options["verbose"])

    def _chat(self, client: ChatClient, verbose: bool) -> None:
        history: list[Turn] = []
        while True:
            try:
                line = input(">>> ")
            except EOFError:
                self.stdout.write("")
                return
            except KeyboardInterrupt:
                self.stdout.write("\nUse Ctrl + d or /bye to exit.")
                continue
            text = line.strip()
            if not text:
                continue
            if text in ("/bye", "/exit"):
                return
            if text == "/clear":
                history.clear()
                self.stdout.write("Cleared session context")
                continue
            if text in ("/?", "/help"):
                self.stdout.write(HELP)
                continue
            history.append({"role": "user", "content": line})
            try:
                answer = self._answer(client, history, verbose)
            except CommandError as exc:
                history.pop()
                self.stderr.write(f"Error: {exc}")
                continue
            except KeyboardInterrupt:
                # Stopped mid-answer: the question stays unanswered, as in ollama.
                history.pop()
                self.stdout.write("")
                continue
            history.append({"role": "assistant", "content": answer})
            self.stdout.write("")

    def _answer(self, client: ChatClient, messages: list[Turn], verbose: bool) -> str:
        """Print the answer as it arrives; returns it whole."""
        parts: list[str] = []
        final: GenerationObject | None = None
        # closing(): a Ctrl-C between two chunks closes the connection too, not only one that
        # comes while the stream waits for the next.
        with contextlib.closing(client.stream(messages)) as chunks:
            for chunk in chunks:
                message = chunk.get("message")
                text = message.get("content", "") if message is not None else ""
                if text:
                    parts.append(text)
                    self.stdout.write(text, ending="")
                    self.stdout.flush()
                if chunk.get("done"):
                    final = chunk
        self.stdout.write("")
        if verbose and final:
            self.stderr.write(_stats(final))
        return "".join(parts)


def _stats(final: GenerationObject) -> str:
    def seconds(ns: int) -> str:
        return f"{ns / 1e9:.6f}s"

    eval_ns = max(int(final.get("eval_duration", 0)), 1)
    prompt_ns = max(int(final.get("prompt_eval_duration", 0)), 1)
    return "\n".join(
        [
            f"total duration:       {seconds(final.get('total_duration', 0))}",
            f"load duration:        {seconds(final.get('load_duration', 0))}",
            f"prompt eval count:    {final.get('prompt_eval_count', 0)} token(s)",
            f"prompt eval duration: {seconds(final.get('prompt_eval_duration', 0))}",
            f"prompt eval rate:     {final.get('prompt_eval_count', 0) / prompt_ns * 1e9:.2f} "
            "tokens/s",
            f"eval count:           {final.get('eval_count', 0)} token(s)",
            f"eval duration:        {seconds(final.get('eval_duration', 0))}",
            f"eval rate:            {final.get('eval_count', 0) / eval_ns * 1e9:.2f} tokens/s",
        ]
    )
