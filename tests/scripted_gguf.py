"""Write a tiny GGUF that writes a known script: its next token is a fixed function of the
token before it.

Its layers add nothing (their output projections are zero), so the hidden state is the last
token's embedding; each embedding is one axis, and the output weights map that axis to the
token's successor with a wide margin. Whatever the sampling settings, the model then writes
the same tokens after the same last prompt token, which lets a test say exactly what an
answer must be (a reasoning model's ``<think>`` block, say) with real llama.cpp generating it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter, TokenType

from tests.tiny_gguf import CHAT_TEMPLATE, _vocabulary, write_llama_header

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"
# After the prompt's last "\n" the model opens a block, reasons "hello world", closes it and
# answers "yes"; after a closing tag (a template that wrote an empty block) it answers at once;
# after an opening tag (a template that opened the block) it reasons at once.
SCRIPT = {
    "<0x0A>": THINK_OPEN,
    THINK_OPEN: "▁hello",
    "▁hello": "▁world",
    "▁world": THINK_CLOSE,
    THINK_CLOSE: "▁yes",
    "▁yes": "</s>",
}
REASONING, ANSWER = "hello world", "yes"

# As Qwen's templates do: the model opens its own block, unless told not to reason, when the
# template writes an empty one for it.
THINKING_TEMPLATE = CHAT_TEMPLATE.replace(
    "<|assistant|>\n",
    "<|assistant|>\n{% if enable_thinking is defined and enable_thinking is false %}"
    f"{THINK_OPEN}{THINK_CLOSE}{{% endif %}}",
)
# As DeepSeek's do: the template opens the block, so the model starts inside it, and drops
# the reasoning of earlier answers.
OPENED_TEMPLATE = CHAT_TEMPLATE.replace(
    "<|assistant|>\n{% endif %}", f"<|assistant|>\n{THINK_OPEN}{{% endif %}}"
).replace("message['content']", f"message['content'].split('{THINK_CLOSE}')[-1]")


def write_scripted_gguf(path: Path, chat_template: str = THINKING_TEMPLATE) -> Path:
    tokens, scores, types = _vocabulary()
    for tag in (THINK_OPEN, THINK_CLOSE):
        tokens.append(tag)
        scores.append(0.0)
        types.append(int(TokenType.USER_DEFINED))
    n_vocab = n_embd = len(tokens)
    ids = {token: i for i, token in enumerate(tokens)}
    end = ids["</s>"]

    embedding = np.eye(n_vocab, n_embd, dtype=np.float32)
    output = np.zeros((n_vocab, n_embd), dtype=np.float32)
    for current in range(n_vocab):
        successor = ids[SCRIPT[tokens[current]]] if tokens[current] in SCRIPT else end
        output[successor, current] = 4.0  # times sqrt(n_embd) after the norm: a margin of ~78

    writer = GGUFWriter(str(path), "llama")
    write_llama_header(
        writer,
        "scripted-test",
        (tokens, scores, types),
        n_ctx=4096,
        n_embd=n_embd,
        n_layer=1,
        n_head=1,
        n_ff=16,
        eos=end,
    )
    writer.add_chat_template(chat_template)

    zeros = np.zeros
    writer.add_tensor("token_embd.weight", embedding)
    writer.add_tensor("blk.0.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
    for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
        writer.add_tensor(f"blk.0.{name}.weight", zeros((n_embd, n_embd), dtype=np.float32))
    writer.add_tensor("blk.0.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("blk.0.ffn_gate.weight", zeros((16, n_embd), dtype=np.float32))
    writer.add_tensor("blk.0.ffn_up.weight", zeros((16, n_embd), dtype=np.float32))
    writer.add_tensor("blk.0.ffn_down.weight", zeros((n_embd, 16), dtype=np.float32))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", output)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
