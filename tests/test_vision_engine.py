"""Images through the engine's door, on the tiny model with its tiny projector
(``tests/tiny_mmproj.py``): each image becomes the projector's embeddings in the prompt, where
the chat template puts the image, on a serial engine and a batched one alike."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from tests.tiny_gguf import CHAT_TEMPLATE
from tests.tiny_mmproj import IMAGE_TOKENS, png_bytes
from workers.engine.events import COUNTED, EngineEvent, Finished, Rejected, TextPiece
from workers.engine.factory import EngineConfig, load_engine
from workers.engine.jobs import Engine
from workers.engine.loading import repack_weights
from workers.engine.requests import EngineRequest, ModelProfile, SamplingOptions

GREEDY = SamplingOptions(temperature=0.0, max_tokens=24)


def build(model: Path, projector: Path | None, parallel: int) -> Engine:
    config = EngineConfig(
        name=f"tiny-vision-{parallel}",
        path=str(model),
        n_ctx=512,
        threads=1,
        repack=repack_weights("auto"),
        parallel=parallel,
        cache_sequences=parallel,
        projector=str(projector) if projector else "",
    )
    return load_engine(config, ModelProfile(chat_template=CHAT_TEMPLATE))


@pytest.fixture(scope="module", params=[1, 4], ids=["serial", "batched"])
def engine(request: pytest.FixtureRequest, tiny_gguf: Path, tiny_mmproj: Path) -> Iterator[Engine]:
    built = build(tiny_gguf, tiny_mmproj, request.param)
    yield built
    built.close()


def chat(text: str, images: int = 1, **kwargs: object) -> EngineRequest:
    parts = [{"type": "image"}] * images + [{"type": "text", "text": text}]
    pictures = tuple(png_bytes(seed=i) for i in range(images))
    return EngineRequest(
        messages=({"role": "user", "content": parts},),
        images=pictures,
        sampling=GREEDY,
        **kwargs,  # type: ignore[arg-type]
    )


def run(engine: Engine, request: EngineRequest) -> list[EngineEvent]:
    return list(engine.submit(request))


def finished(events: list[EngineEvent]) -> Finished:
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1]


def text_of(events: list[EngineEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextPiece))


def test_an_image_adds_its_embeddings_to_the_prompt_tokens(engine: Engine) -> None:
    text_only = EngineRequest(
        messages=({"role": "user", "content": "what is this"},), sampling=GREEDY
    )
    plain = finished(run(engine, text_only)).usage.prompt_tokens
    one = finished(run(engine, chat("what is this"))).usage.prompt_tokens
    two = finished(run(engine, chat("what is this", images=2))).usage.prompt_tokens
    assert one == plain + IMAGE_TOKENS
    assert two == plain + 2 * IMAGE_TOKENS


def test_the_same_image_gives_the_same_greedy_answer_and_another_image_another(
    engine: Engine,
) -> None:
    first = text_of(run(engine, chat("describe")))
    again = text_of(run(engine, chat("describe")))
    assert first and first == again
    other = EngineRequest(
        messages=(
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "describe"}]},
        ),
        images=(png_bytes(seed=99),),
        sampling=GREEDY,
    )
    assert text_of(run(engine, other)) != first


def test_an_image_read_from_the_cache_answers_as_one_decoded_afresh(engine: Engine) -> None:
    """A second turn with the same image reuses the cached start, image and all."""
    first = run(engine, chat("one"))
    answer = text_of(first)
    turn = EngineRequest(
        messages=(
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "one"}]},
            {"role": "assistant", "content": answer},
            {"role": "user", "content": "two"},
        ),
        images=(png_bytes(seed=0),),
        sampling=GREEDY,
    )
    cached = run(engine, turn)
    assert finished(cached).usage.cached_tokens > IMAGE_TOKENS
    fresh = build_fresh(engine)
    try:
        assert text_of(run(fresh, turn)) == text_of(cached)
    finally:
        fresh.close()


def build_fresh(engine: Engine) -> Engine:
    projector = engine.projector
    assert projector is not None
    parallel = getattr(engine, "parallel", 1)
    return build(Path(engine.llama.model_path), Path(projector.path), parallel)


def test_counting_tokens_counts_the_images(engine: Engine) -> None:
    counted = finished(run(engine, replace(chat("hi"), count_tokens_only=True)))
    assert counted.finish_reason == COUNTED
    assert counted.usage.prompt_tokens > IMAGE_TOKENS


def test_bytes_that_are_no_image_are_rejected(engine: Engine) -> None:
    bad = replace(chat("hi"), images=(b"\x89PNG\r\n\x1a\n not really",))
    last = run(engine, bad)[-1]
    assert isinstance(last, Rejected) and last.code == "invalid_image"


def test_more_image_parts_than_images_are_rejected(engine: Engine) -> None:
    last = run(engine, replace(chat("hi", images=2), images=(png_bytes(),)))[-1]
    assert isinstance(last, Rejected) and "2 image parts for 1 images" in last.message


def test_a_model_without_a_projector_refuses_images(tiny_gguf: Path) -> None:
    engine = build(tiny_gguf, None, 1)
    try:
        last = run(engine, chat("hi"))[-1]
    finally:
        engine.close()
    assert isinstance(last, Rejected) and "no vision projector" in last.message


def test_images_and_text_requests_share_a_batched_engine(
    tiny_gguf: Path, tiny_mmproj: Path
) -> None:
    engine = build(tiny_gguf, tiny_mmproj, 4)
    try:
        alone = text_of(run(engine, chat("look")))
        text_alone = text_of(run(engine, EngineRequest(prompt="hello world the", sampling=GREEDY)))
        handles = [
            engine.submit(chat("look")),
            engine.submit(EngineRequest(prompt="hello world the", sampling=GREEDY)),
            engine.submit(chat("look")),
        ]
        answers = [text_of(list(h)) for h in handles]
    finally:
        engine.close()
    assert answers == [alone, text_alone, alone]
