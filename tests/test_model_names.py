from __future__ import annotations

import pytest

from models_app.names import InvalidModelName, normalize_model_name


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("gemma3", "gemma3:latest"),
        ("gemma3:270m", "gemma3:270m"),
        ("hf.co/owner/repo:Q4_K_M", "hf.co/owner/repo:Q4_K_M"),
    ],
)
def test_it_normalizes_names(raw: str, expected: str) -> None:
    assert normalize_model_name(raw) == expected


@pytest.mark.parametrize("raw", ["", "a b", "../etc", "a/../b", "x:y:z", ":tag", "name:", "/abs"])
def test_it_rejects_malformed_names(raw: str) -> None:
    with pytest.raises(InvalidModelName):
        normalize_model_name(raw)
