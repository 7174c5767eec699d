"""``herd run``: a one-shot answer or a terminal chat, streamed through the live server."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time

import ollama

from tests.live import REPO, LiveServer

GREEDY = ["--set", "temperature=0", "--set", "num_predict=20"]


def herd_run(
    server: LiveServer, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "project.cli", "run", *args],
        env=server.env,
        cwd=REPO,
        input=stdin if stdin is not None else "",
        capture_output=True,
        text=True,
        timeout=120,
    )


def start_herd_run(server: LiveServer, *args: str) -> subprocess.Popen[bytes]:
    """``herd run`` started with no terminal, its output read as it comes."""
    return subprocess.Popen(
        [sys.executable, "-m", "project.cli", "run", *args],
        env=server.env,
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_it_prints_the_answer_to_a_prompt(server: LiveServer, ollama_client: ollama.Client) -> None:
    expected = ollama_client.chat(
        model="tiny",
        messages=[{"role": "user", "content": "hello there"}],
        options={"temperature": 0, "num_predict": 20},
    )
    done = herd_run(server, "tiny", "hello", "there", *GREEDY)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{expected.message.content}\n"


def test_a_piped_prompt_is_answered_once(server: LiveServer, ollama_client: ollama.Client) -> None:
    expected = ollama_client.chat(
        model="tiny",
        messages=[{"role": "user", "content": "hello"}],
        options={"temperature": 0, "num_predict": 20},
    )
    done = herd_run(server, "tiny", *GREEDY, stdin="hello\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{expected.message.content}\n"


def test_the_answer_streams_while_it_is_generated(server: LiveServer) -> None:
    # Greedy: a sampled answer from random weights can meet its end-of-text token early.
    options = ["--set", "temperature=0", "--set", "num_predict=400"]
    process = start_herd_run(server, "slow", "go", *options)
    assert process.stdout is not None
    outputs: list[float] = []
    while True:
        chunk = os.read(process.stdout.fileno(), 4096)
        if not chunk:
            break
        outputs.append(time.monotonic())
    finished = time.monotonic()
    assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    assert len(outputs) > 5, "the answer came in one piece"
    assert finished - outputs[0] > 0.3


def test_verbose_prints_the_timings(server: LiveServer) -> None:
    done = herd_run(server, "tiny", "hello", "--verbose", *GREEDY)
    assert done.returncode == 0
    assert re.search(r"eval count:\s+20 token\(s\)", done.stderr)
    assert re.search(r"eval rate:\s+[\d.]+ tokens/s", done.stderr)
    assert "total duration:" in done.stderr


def test_an_unknown_model_fails_with_the_servers_message(server: LiveServer) -> None:
    done = herd_run(server, "nope", "hello")
    assert done.returncode != 0
    assert "model 'nope' not found" in done.stderr


def test_a_server_that_is_not_there_is_named(server: LiveServer) -> None:
    env = {**server.env, "HERD_HOST": "127.0.0.1:9"}
    done = subprocess.run(
        [sys.executable, "-m", "project.cli", "run", "tiny", "hello"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    assert "could not reach Herd at http://127.0.0.1:9" in done.stderr


def test_on_a_terminal_it_chats_and_remembers_the_conversation(server: LiveServer) -> None:
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "project.cli", "run", "tiny", "--verbose", *GREEDY],
        env=server.env,
        cwd=REPO,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    seen = b""

    def read_until(marker: bytes, count: int) -> None:
        nonlocal seen
        deadline = time.monotonic() + 60
        while seen.count(marker) < count:
            assert time.monotonic() < deadline, seen.decode(errors="replace")
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                seen += os.read(controller, 4096)

    read_until(b">>> ", 1)
    os.write(controller, b"hello\n")
    read_until(b">>> ", 2)
    os.write(controller, b"hello again\n")
    read_until(b">>> ", 3)
    os.write(controller, b"/bye\n")
    assert process.wait(30) == 0
    os.close(controller)
    transcript = seen.decode(errors="replace")
    counts = [int(n) for n in re.findall(r"prompt eval count:\s+(\d+)", transcript)]
    assert len(counts) == 2
    # The second turn carries the first question and answer with it.
    assert counts[1] > counts[0] + 20
    assert transcript.count("eval count:") >= 2


def test_ctrl_c_stops_the_answer_and_its_generation_on_the_worker(server: LiveServer) -> None:
    from tests.test_streaming_relay import assert_cancelled_at_once

    streams = f"{server.namespace}:req:*"
    before = set(server.redis().scan_iter(streams))
    # Plain greedy, as the relay tests' long answer (Ollama's default repeat_penalty off): the
    # slow model writes to num_predict. With the penalty it could end within a few tokens.
    options = ["--set", "temperature=0", "--set", "repeat_penalty=1", "--set", "num_predict=3000"]
    process = start_herd_run(server, "slow", "go", *options)
    assert process.stdout is not None
    printed = b""
    deadline = time.monotonic() + 60
    while len(printed) < 20:  # the answer is streaming
        assert time.monotonic() < deadline, printed
        printed += os.read(process.stdout.fileno(), 4096)
    (stream,) = set(server.redis().scan_iter(streams)) - before
    assert process.poll() is None, f"the answer ended by itself: {printed!r}"
    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 130
    assert_cancelled_at_once(server, stream.decode().rpartition(":req:")[2])
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read().decode()
