"""Write a tiny llama-architecture GGUF with random weights, for tests.

It loads in llama.cpp in milliseconds and generates real (meaningless) tokens: a SentencePiece
style vocabulary with byte fallback, so any text tokenizes, and a chat template, so chat works.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, Keys, LlamaFileType, PoolingType, TokenType

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

_WORDS = [
    "the",
    "a",
    "is",
    "of",
    "and",
    "to",
    "in",
    "it",
    "you",
    "that",
    "he",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "I",
    "his",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "hello",
    "world",
    "model",
    "token",
    "yes",
    "no",
    "true",
    "false",
    "answer",
    "herd",
    "llama",
]


FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")


def _vocabulary() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>"]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL]
    tokens += [f"<0x{b:02X}>" for b in range(256)]
    types += [TokenType.BYTE] * 256
    pieces = [chr(c) for c in range(ord("a"), ord("z") + 1)] + [str(d) for d in range(10)]
    pieces += ["▁" + p for p in pieces] + ["▁" + w for w in _WORDS] + ["▁", "{", "}", '"', ":"]
    seen = set(tokens)
    for piece in pieces:
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(TokenType.NORMAL)
    # SentencePiece merges prefer higher scores: make longer pieces win.
    scores = [0.0] * 259 + [float(len(t)) - 100.0 for t in tokens[259:]]
    return tokens, scores, [int(t) for t in types]


def write_llama_header(
    writer: GGUFWriter,
    name: str,
    vocabulary: tuple[list[str], list[float], list[int]],
    *,
    n_ctx: int,
    n_embd: int,
    n_layer: int,
    n_head: int,
    n_ff: int,
    eos: int = 2,
) -> None:
    """The keys of a llama-architecture model with an F32 SentencePiece-style vocabulary
    (``<unk>``, ``<s>`` and ``eos`` as its special tokens)."""
    tokens, scores, types = vocabulary
    writer.add_name(name)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_file_type(LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(eos)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)


def write_tiny_gguf(
    path: Path,
    *,
    n_embd: int = 64,
    n_layer: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    n_ctx: int = 512,
    seed: int = 1234,
    split_max_tensors: int = 0,
    fim: bool = False,
) -> Path:
    """Write the model to ``path``; with ``split_max_tensors``, as a split GGUF whose parts are
    named ``{stem}-0000i-of-0000n.gguf`` beside ``path`` (the first part is returned). With
    ``fim``, the vocabulary has fill-in-the-middle tokens (prefix, suffix, middle), named in
    the metadata as a code model's are."""
    tokens, scores, types = _vocabulary()
    fim_ids = []
    if fim:
        for name in FIM_TOKENS:
            fim_ids.append(len(tokens))
            tokens.append(name)
            scores.append(0.0)
            types.append(int(TokenType.CONTROL))
    n_vocab = len(tokens)
    rng = np.random.default_rng(seed)

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.4).astype(np.float32)

    writer = GGUFWriter(str(path), "llama", split_max_tensors=split_max_tensors)
    write_llama_header(
        writer,
        "tiny-test",
        (tokens, scores, types),
        n_ctx=n_ctx,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_ff=n_ff,
    )
    if fim:
        for key, token_id in zip(
            (Keys.Tokenizer.FIM_PRE_ID, Keys.Tokenizer.FIM_SUF_ID, Keys.Tokenizer.FIM_MID_ID),
            fim_ids,
            strict=True,
        ):
            writer.add_uint32(key, token_id)
    writer.add_chat_template(CHAT_TEMPLATE)

    writer.add_tensor("token_embd.weight", weight(n_vocab, n_embd))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    # Small output weights keep the logits close together, so sampling options (penalties,
    # temperature) visibly change what comes out.
    writer.add_tensor("output.weight", weight(n_vocab, n_embd) * 0.1)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    shards = writer.format_shard_names(path)
    return shards[0]


def write_tiny_reranker(
    path: Path, *, n_embd: int = 64, n_layer: int = 2, n_head: int = 2, seed: int = 4321
) -> Path:
    """A tiny reranker: a qwen3-architecture model (llama.cpp loads its ``cls.output``
    classifier head) with rank pooling in its header and two output labels, as Qwen3-Reranker
    GGUFs have; llama.cpp takes the last token's state through the head and a softmax, and the
    first output is the pair's score. Random weights: scores that differ by document and stay
    the same from call to call, not meaningful ones."""
    tokens, scores, types = _vocabulary()
    rng = np.random.default_rng(seed)
    n_ff = 2 * n_embd
    head_dim = n_embd // n_head

    def weight(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.4).astype(np.float32)

    writer = GGUFWriter(str(path), "qwen3")
    write_llama_header(
        writer,
        "tiny-reranker",
        (tokens, scores, types),
        n_ctx=2048,
        n_embd=n_embd,
        n_layer=n_layer,
        n_head=n_head,
        n_ff=n_ff,
    )
    writer.add_pooling_type(PoolingType.RANK)
    writer.add_classifier_output_labels(["yes", "no"])
    writer.add_tensor("token_embd.weight", weight(len(tokens), n_embd))
    for i in range(n_layer):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.attn_q_norm.weight", np.ones(head_dim, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.attn_k_norm.weight", np.ones(head_dim, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("cls.output.weight", weight(2, n_embd))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
