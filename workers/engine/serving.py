"""One request on one slot, start to end: the engine's side of ``Engine.submit``.

A generation: the tool plan, the prompt's tokens (the model's chat template rendered over the
messages, or the completion's text or tokens, cut down to fit when the request says
``truncate``), the checks that turn a request the model cannot run into ``Rejected``, then the
generation, its text split into reasoning, answer and tool calls as it streams, and
``Finished``. An embedding request: each input's tokens checked, then ``Embedded``.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import llama_cpp

from workers.engine.events import (
    COUNTED,
    Embedded,
    EngineEvent,
    Finished,
    Rejected,
    TextPiece,
    ThinkingPiece,
    ToolCall,
    ToolCallPiece,
    Usage,
)
from workers.engine.generation import (
    Emit,
    RequestRejected,
    check_grammar,
    check_prompt_fits,
    check_tokens,
    infill_tokens,
    run_generation,
    tokenize_chat,
    tokenize_prompt,
)
from workers.engine.logprobs import LogprobEntry
from workers.engine.media import ImageUnreadable, MediaPrompt, Projector
from workers.engine.prompts import TemplateError, message_text, render_chat_prompt
from workers.engine.reasoning import ReasoningSplitter, ReasoningStream
from workers.engine.requests import EmbeddingRequest, EngineRequest, ModelProfile
from workers.engine.slots import Slot
from workers.engine.stepper import sequence_context
from workers.engine.tool_stream import ForcedCallStream, ParsedCall
from workers.engine.tools import ToolCallHold, ToolChoiceError, ToolPlan, plan_tools
from workers.engine.truncation import PromptTooLong, answer_room, fit_chat, keep_end
from workers.engine.vocabulary import vocabulary

# Delivers an event to the request's caller; False once the request is cancelled.
Send = Callable[[EngineEvent], bool]


def serve_generation(
    slot: Slot,
    profile: ModelProfile,
    request: EngineRequest,
    send: Send,
    projector: Projector | None = None,
) -> None:
    """Run ``request`` on ``slot`` and send its events, the last one final. A request with
    images needs the model's ``projector``."""
    media: MediaPrompt | None = None
    try:
        if request.images:
            media = _media_prompt(slot.llama, profile, request, projector)
            if media is None:
                send(Rejected(*_NO_VISION))
                return
        _serve_generation(slot, profile, request, send, media)
    except RequestRejected as exc:
        send(Rejected(str(exc), exc.code, exc.param))
    finally:
        if media is not None:
            media.close()


# A model without a projector: the same words the web answers with.
_NO_VISION = (
    "this model has no vision projector, so it cannot read images",
    "unsupported_content",
    "messages",
)


def _serve_generation(
    slot: Slot,
    profile: ModelProfile,
    request: EngineRequest,
    send: Send,
    media: MediaPrompt | None,
) -> None:
    llama = slot.llama
    options = request.sampling
    try:
        plan = plan_tools(_list(request.tools), request.tool_choice)
        if media is not None:
            tokens, param = media.tokens, "messages"
        else:
            tokens, param = _prompt_tokens(llama, profile, request, plan)
        if request.count_tokens_only:
            # Counted as the prompt would be read, over the context or not.
            send(Finished(COUNTED, Usage(prompt_tokens=len(tokens))))
            return
        check_prompt_fits(llama, tokens, param)
        if plan.schema is not None:
            options = replace(
                options,
                response_format={"type": "json_schema", "schema": plan.schema, "param": "tools"},
            )
        check_grammar(llama, options.response_format)
    except RequestRejected as exc:
        send(Rejected(str(exc), exc.code, exc.param))
        return
    except ToolChoiceError as exc:
        send(Rejected(str(exc), "invalid_value", "tool_choice"))
        return

    def answer(text: str, tokens: int, logprobs: list[LogprobEntry] | None) -> bool:
        return send(TextPiece(text, tokens, logprobs))

    if request.echo:
        answer(_echoed(llama, request), 0, None)
    calls = _ToolCalls(plan, answer, send)
    reasoning = _reasoning(llama, profile, request, options, tokens, calls.emit, send)
    result = run_generation(
        slot,
        tokens,
        options,
        reasoning.emit if reasoning else calls.emit,
        request.cancel.cancelled,
        media,
    )
    if reasoning is not None and result.finish_reason != "cancelled":
        reasoning.finish()
    tool_calls = calls.finish(cut=result.finish_reason == "length")
    finish_reason = result.finish_reason
    if tool_calls and finish_reason == "stop":
        finish_reason = "tool_calls"
    send(
        Finished(
            finish_reason,
            Usage(result.prompt_tokens, result.completion_tokens, result.cached_tokens),
            prompt_eval_ns=result.prompt_eval_ns,
            eval_ns=result.eval_ns,
            tool_calls=tuple(tool_calls),
            stop_sequence=result.stop_sequence,
        )
    )


def serve_embeddings(embedder: llama_cpp.Llama, request: EmbeddingRequest, send: Send) -> None:
    """Embed each input of ``request`` with the pooled-embedding context ``embedder``."""
    try:
        inputs = _embedding_texts(embedder, request.inputs)
    except RequestRejected as exc:
        send(Rejected(str(exc), exc.code, exc.param))
        return
    limit = embedder.n_ctx()
    for index, text in enumerate(inputs):
        count = len(embedder.tokenize(text.encode("utf-8")))
        if count > limit and not request.truncate:
            send(
                Rejected(
                    f"input {index} has {count} tokens, over the context of {limit}",
                    "context_length_exceeded",
                    "input",
                )
            )
            return
    vectors, total_tokens = embedder.embed(
        inputs, normalize=request.normalize, truncate=True, return_count=True
    )
    send(Embedded([list(v) for v in vectors], total_tokens))


class _ToolCalls:
    """Where an answer's text goes when tools are offered. ``auto``: text that opens like a
    call is held to the end and read as calls there (``ToolCallHold``). ``forced``: the call
    goes out as ``ToolCallPiece`` events while it is written (``ForcedCallStream``). ``none``:
    straight to ``emit``."""

    def __init__(self, plan: ToolPlan, emit: Emit, send: Send) -> None:
        self._emit = emit
        self._send = send
        self._hold = ToolCallHold(plan) if plan.mode == "auto" else None
        names = [f["name"] for f in plan.functions]
        self._forced = ForcedCallStream(names) if plan.mode == "forced" else None

    def emit(self, text: str, tokens: int, logprobs: list[LogprobEntry] | None) -> bool:
        if self._forced is not None:
            alive = True
            for delta in self._forced.feed(text):
                alive = self._send(ToolCallPiece(**delta)) and alive
            return alive
        if self._hold is None:
            return self._emit(text, tokens, logprobs)
        alive = True
        for piece in self._hold.feed((text, tokens, logprobs)):
            alive = self._emit(*piece) and alive
        return alive

    def finish(self, cut: bool) -> list[ToolCall]:
        """The answer's calls, once it has ended (``cut``: by its token limit)."""
        if self._forced is not None:
            call = self._forced.finish()
            return [_tool_call(call)] if call is not None else []
        if self._hold is None:
            return []
        calls, rest = self._hold.finish(cut)
        for piece in rest:
            self._emit(*piece)
        return [_tool_call(c) for c in calls or []]


def _reasoning(
    llama: llama_cpp.Llama,
    profile: ModelProfile,
    request: EngineRequest,
    options: Any,
    prompt: list[int],
    answer: Emit,
    send: Send,
) -> ReasoningStream | None:
    """Where the reasoning of a model that reasons apart goes: ``ThinkingPiece``. None when
    the request keeps the text whole, or when a grammar shapes all of the output (a forced
    call, a JSON format): then none of it is reasoning."""
    if not (request.separate_reasoning and len(profile.reasoning_tags) == 2):
        return None
    if options.response_format and options.response_format.get("type") != "text":
        return None
    opening, closing = profile.reasoning_tags
    # The end of the prompt says whether the template opened the block for the model (an
    # image's placeholders in it are no text).
    pieces = (vocabulary(llama).piece(t) for t in prompt[-16:] if t >= 0)
    tail = b"".join(pieces).decode("utf-8", "replace")
    splitter = ReasoningSplitter.after_prompt(tail, opening, closing)

    def think(text: str, tokens: int, logprobs: list[LogprobEntry] | None) -> bool:
        return send(ThinkingPiece(text, tokens, logprobs))

    return ReasoningStream(splitter, think, answer)


def _tool_call(call: ParsedCall) -> ToolCall:
    return ToolCall(call["id"], call["name"], call["arguments"], call.get("arguments_text"))


def _list(items: tuple[dict[str, Any], ...] | None) -> list[dict[str, Any]] | None:
    return list(items) if items is not None else None


def _prompt_tokens(
    llama: llama_cpp.Llama, profile: ModelProfile, request: EngineRequest, plan: ToolPlan
) -> tuple[list[int], str]:
    """The prompt's tokens and the request field they came from; with ``truncate``, cut down
    to leave room for the answer (``workers.engine.truncation``)."""
    n_ctx = sequence_context(llama)
    limit = n_ctx - answer_room(n_ctx, request.sampling.max_tokens) if request.truncate else 0
    if request.messages is None:
        if request.suffix is not None:
            prefix = _prompt_without_bos(llama, request)
            return infill_tokens(llama, prefix, request.suffix), "prompt"
        if request.prompt_tokens is not None:
            return check_tokens(llama, list(request.prompt_tokens), "prompt"), "prompt"
        tokens = tokenize_prompt(llama, request.prompt or "")
        if limit:
            tokens = keep_end(tokens, limit, keep_first=int(tokens[:1] == [llama.token_bos()]))
        return tokens, "prompt"
    bos = _token_text(llama, llama.token_bos())
    eos = _token_text(llama, llama.token_eos())
    variables = dict(request.template_variables) if request.template_variables else None

    def render(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> list[int]:
        prompt = render_chat_prompt(
            profile.chat_template,
            messages,
            bos_token=bos,
            eos_token=eos,
            system_prompt=profile.system_prompt,
            tools=tools,
            variables=variables,
        )
        return tokenize_chat(llama, prompt, [message_text(m.get("content")) for m in messages])

    # The functions the model may call, and only those (a named tool_choice offers one).
    tools = [{"type": "function", "function": f} for f in plan.functions] or None
    # The model's own messages (a Modelfile's MESSAGE lines) open every chat.
    messages = [*profile.messages, *request.messages]
    try:
        if not limit:
            return render(messages, tools), "messages"
        return fit_chat(messages, tools, render, limit), "messages"
    except TemplateError as exc:
        raise RequestRejected(str(exc), code="invalid_messages", param="messages") from exc
    except PromptTooLong as exc:
        raise RequestRejected(
            f"This model's maximum context length is {n_ctx} tokens, and {exc}.",
            code="context_length_exceeded",
            param="messages",
        ) from exc


def _media_prompt(
    llama: llama_cpp.Llama,
    profile: ModelProfile,
    request: EngineRequest,
    projector: Projector | None,
) -> MediaPrompt | None:
    """The prompt of a chat with images: the template rendered with a marker where each image
    part is, the text between markers tokenized as a chat's text is, each image through the
    projector. None for a model without a projector. Tools and truncation are not offered
    with images: a tool plan's prompt or a cut-down chat would have to keep every image."""
    if projector is None:
        return None
    if not projector.positions_are_indices:
        raise RequestRejected(
            "this model's projector places images by 2-D positions (M-RoPE), which Herd's "
            "engine does not do yet",
            code="unsupported_content",
            param="messages",
        )
    if request.messages is None or request.tools:
        raise RequestRejected(
            "images go in chat messages, without tools",
            code="unsupported_content",
            param="messages",
        )
    # A marker no message can hold, so that no text a user writes is taken for an image.
    marker = f"<herd-image-{secrets.token_hex(8)}>"
    messages, count = _with_markers([*profile.messages, *request.messages], marker)
    if count != len(request.images):
        raise RequestRejected(
            f"the messages hold {count} image parts for {len(request.images)} images",
            code="invalid_messages",
            param="messages",
        )
    variables = dict(request.template_variables) if request.template_variables else None
    try:
        prompt = render_chat_prompt(
            profile.chat_template,
            messages,
            bos_token=_token_text(llama, llama.token_bos()),
            eos_token=_token_text(llama, llama.token_eos()),
            system_prompt=profile.system_prompt,
            variables=variables,
        )
    except TemplateError as exc:
        raise RequestRejected(str(exc), code="invalid_messages", param="messages") from exc
    texts = prompt.split(marker)
    if len(texts) != count + 1:
        raise RequestRejected(
            "the model's chat template did not write every image of the messages",
            code="invalid_messages",
            param="messages",
        )
    contents = [piece for m in messages for piece in message_text(m.get("content")).split(marker)]
    segments: list[list[int] | bytes] = []
    for index, text in enumerate(texts):
        if index:
            segments.append(request.images[index - 1])
        if text:
            segments.append(tokenize_chat(llama, text, contents, first=index == 0))
    try:
        media = projector.media_prompt(segments)
    except ImageUnreadable as exc:
        raise RequestRejected(str(exc), code="invalid_image", param="messages") from exc
    if not media.ends_with_text():
        media.close()
        raise RequestRejected(
            "the prompt must end with text after its last image",
            code="invalid_messages",
            param="messages",
        )
    return media


def _with_markers(messages: list[dict[str, Any]], marker: str) -> tuple[list[dict[str, Any]], int]:
    """``messages`` with each ``{"type": "image"}`` content part turned into a text part
    holding ``marker``, and how many there were."""
    count = 0
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if part.get("type") == "image":
                    count += 1
                    part = {"type": "text", "text": marker}
                parts.append(part)
            message = {**message, "content": parts}
        out.append(message)
    return out, count


def _token_text(llama: llama_cpp.Llama, token: int) -> str:
    return llama._model.token_get_text(token) if token >= 0 else ""


def _prompt_without_bos(llama: llama_cpp.Llama, request: EngineRequest) -> list[int]:
    if request.prompt_tokens is not None:
        return check_tokens(llama, list(request.prompt_tokens), "prompt")
    return llama.tokenize((request.prompt or "").encode("utf-8"), add_bos=False, special=False)


def _echoed(llama: llama_cpp.Llama, request: EngineRequest) -> str:
    """The prompt as ``echo`` gives it back ahead of the answer."""
    if request.prompt_tokens is None:
        return request.prompt or ""
    return llama.detokenize(list(request.prompt_tokens)).decode("utf-8", errors="replace")


def _embedding_texts(
    embedder: llama_cpp.Llama, inputs: tuple[str | tuple[int, ...], ...]
) -> list[str]:
    """Each input as text: llama.cpp's embedder tokenizes text itself, so a token-id input
    is detokenized first (its tokens again, for text the vocabulary tokenizes one way)."""
    texts = []
    for item in inputs:
        if isinstance(item, str):
            texts.append(item)
        else:
            tokens = check_tokens(embedder, list(item), "input")
            texts.append(embedder.detokenize(tokens).decode("utf-8", errors="replace"))
    return texts
