"""Which hub files a reference means (no hub needed)."""

from __future__ import annotations

import pytest

from models_app.references import (
    HubFile,
    PullRefused,
    available_quants,
    file_quant,
    parse_reference,
    select_files,
)


def files(*names: str) -> list[HubFile]:
    return [HubFile(n, 10, "0" * 64) for n in names]


@pytest.mark.parametrize(
    ("filename", "quant"),
    [
        ("Llama-3.2-1B-Instruct-Q4_K_M.gguf", "Q4_K_M"),
        ("tinyllama-1.1b-chat-v1.0.Q8_0.gguf", "Q8_0"),
        ("model-IQ4_XS.gguf", "IQ4_XS"),
        ("gemma-3-270m-it-UD-Q4_K_XL.gguf", "UD-Q4_K_XL"),
        ("model-bf16.gguf", "bf16"),
        ("Q4_K_M/big-Q4_K_M-00001-of-00003.gguf", "Q4_K_M"),
        ("model.gguf", ""),
    ],
)
def test_it_reads_the_quant_from_a_file_name(filename: str, quant: str) -> None:
    assert file_quant(filename) == quant


def test_it_parses_the_three_reference_forms() -> None:
    assert parse_reference("hf.co/o/r:q4_k_m").name == "hf.co/o/r:q4_k_m"
    assert parse_reference("hf.co/o/r").name == "hf.co/o/r:latest"
    plain = parse_reference("huggingface.co/o/r/m-Q8_0.gguf")
    assert (plain.repo_id, plain.filename, plain.name) == (
        "o/r",
        "m-Q8_0.gguf",
        "hf.co/o/r/m-Q8_0.gguf:latest",
    )


def test_a_bare_reference_picks_q4_k_m() -> None:
    chosen = select_files(parse_reference("hf.co/o/r"), files("m-Q8_0.gguf", "m-Q4_K_M.gguf"))
    assert [f.name for f in chosen] == ["m-Q4_K_M.gguf"]


def test_a_split_quant_means_every_part_in_order() -> None:
    repo = files(
        "m-Q4_K_M-00002-of-00003.gguf",
        "m-Q4_K_M-00001-of-00003.gguf",
        "m-Q4_K_M-00003-of-00003.gguf",
        "m-Q8_0.gguf",
    )
    chosen = select_files(parse_reference("hf.co/o/r:Q4_K_M"), repo)
    assert [f.name for f in chosen] == [f"m-Q4_K_M-0000{i}-of-00003.gguf" for i in (1, 2, 3)]
    by_file = select_files(parse_reference("hf.co/o/r/m-Q4_K_M-00002-of-00003.gguf"), repo)
    assert by_file == chosen


def test_an_incomplete_split_is_refused() -> None:
    repo = files("m-Q4_K_M-00001-of-00002.gguf")
    with pytest.raises(PullRefused, match=r"00002-of-00002\.gguf is missing"):
        select_files(parse_reference("hf.co/o/r"), repo)


def test_projectors_are_not_models() -> None:
    repo = files("mmproj-F16.gguf", "m-Q8_0.gguf")
    assert available_quants(repo) == ["Q8_0"]
    with pytest.raises(PullRefused, match="has no quant F16; it has: Q8_0") as caught:
        select_files(parse_reference("hf.co/o/r:F16"), repo)
    assert caught.value.status == 404


def test_a_repos_projector_comes_after_the_model_f16_first() -> None:
    repo = files("mmproj-m-F32.gguf", "m-Q8_0.gguf", "mmproj-m-F16.gguf", "m-Q4_K_M.gguf")
    chosen = select_files(parse_reference("hf.co/o/r:Q8_0"), repo)
    assert [f.name for f in chosen] == ["m-Q8_0.gguf", "mmproj-m-F16.gguf"]
    only = files("m-Q4_K_M.gguf")
    assert [f.name for f in select_files(parse_reference("hf.co/o/r"), only)] == ["m-Q4_K_M.gguf"]
