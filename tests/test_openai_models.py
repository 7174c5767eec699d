from __future__ import annotations

import openai
import pytest
from openai import OpenAI


def test_it_lists_ready_models(web_client: OpenAI) -> None:
    ids = {m.id for m in web_client.models.list().data}
    assert {"tiny:latest", "slow:latest"} <= ids


def test_it_retrieves_one_model_by_name(web_client: OpenAI) -> None:
    model = web_client.models.retrieve("tiny:latest")
    assert model.id == "tiny:latest"
    assert model.object == "model"


def test_it_answers_404_for_an_unknown_model(web_client: OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        web_client.models.retrieve("nope:1")
    assert caught.value.body["code"] == "model_not_found"  # type: ignore[index]
