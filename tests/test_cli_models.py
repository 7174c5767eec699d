"""``herd pull``, ``herd list``, ``herd show``, ``herd cp`` and ``herd rm`` against a running
server, the way ``ollama`` talks to ``ollama serve``."""

from __future__ import annotations

import hashlib

from tests.hub_server import FakeHub
from tests.live import LiveServer
from tests.pulling import repo_folder, tags

NAME = "hf.co/tester/cli-GGUF:Q4_K_M"


def test_herd_pull_shows_a_progress_bar(pull_server: LiveServer, hub: FakeHub) -> None:
    result = pull_server.herd("pull", NAME)
    sha = hashlib.sha256(hub.repos["tester/cli-GGUF"].files["cli-Q4_K_M.gguf"]).hexdigest()
    assert result.stdout.splitlines() == [
        "pulling manifest",
        "verifying sha256 digest",
        "writing manifest",
        "success",
    ]
    assert f"pulling {sha[:12]}: 100%" in result.stderr
    assert "530k/530k" in result.stderr
    assert NAME in tags(pull_server)


def test_herd_pull_says_what_is_wrong(pull_server: LiveServer) -> None:
    result = pull_server.herd("pull", "hf.co/tester/noquant-GGUF", check=False)
    assert result.returncode != 0
    assert "name a quant, one of: F16, Q8_0" in result.stderr


def test_herd_list_show_cp_and_rm(pull_server: LiveServer) -> None:
    pull_server.herd("pull", NAME)
    listed = pull_server.herd("list").stdout.splitlines()
    assert listed[0].split() == ["NAME", "ID", "SIZE", "MODIFIED"]
    (row,) = [line for line in listed if line.startswith(NAME + " ")]
    assert "530 KB" in row
    assert tags(pull_server)[NAME]["digest"][:12] in row

    shown = pull_server.herd("show", NAME).stdout
    assert "architecture        llama" in shown
    assert "quantization        F32" in shown
    assert "context length      2048" in shown
    assert "completion" in shown and "embedding" in shown
    assert pull_server.herd("show", NAME, "--template").stdout.startswith("{{ bos_token }}")

    copied = pull_server.herd("cp", NAME, "short")
    assert copied.stdout.strip() == f"copied '{NAME}' to 'short'"
    assert "short:latest" in tags(pull_server)

    removed = pull_server.herd("rm", "short")
    assert removed.stdout.strip() == "deleted 'short'"
    assert "short:latest" not in tags(pull_server)
    # The original still uses the file.
    assert (repo_folder(pull_server, "tester/cli-GGUF") / "cli-Q4_K_M.gguf").exists()


def test_the_cli_reports_an_unknown_model(pull_server: LiveServer) -> None:
    for args in (("show", "nope"), ("rm", "nope"), ("cp", "nope", "x")):
        result = pull_server.herd(*args, check=False)
        assert result.returncode != 0
        assert "model 'nope' not found" in result.stderr
