"""Loading a model into llama.cpp, with weight repacking off where it is known to crash.

llama.cpp repacks a model's weights at load time for the CPU's fastest kernels (its "extra
buffer types"). On a CPU with AMX (Intel Xeon from Sapphire Rapids on) it chooses its AMX
kernels for quantized weights, and those crash the process with a segmentation fault on the
first decode on some of these machines, virtual ones among them (ggml-org/llama.cpp#20824;
seen here with the demo model's Q4_K weights). ``HERD_CPU_REPACK`` decides: ``auto`` (the
default) repacks except where llama.cpp reports AMX, ``on`` and ``off`` say it outright.
Without repacking the weights stay as the file has them and llama.cpp's plain kernels for
that CPU run them.
"""

from __future__ import annotations

from typing import Any

import llama_cpp


def cpu_has_amx() -> bool:
    """Whether llama.cpp's CPU backend was built with AMX kernels for this CPU."""
    info = llama_cpp.llama_print_system_info().decode(errors="replace")
    return "AMX_INT8 = 1" in info


def repack_weights(choice: str = "auto") -> bool:
    """Whether models are loaded with llama.cpp's repacked weights: ``choice`` is ``auto``,
    ``on`` or ``off``, as ``HERD_CPU_REPACK`` takes them."""
    if choice == "auto":
        return not cpu_has_amx()
    return choice == "on"


class Llama(llama_cpp.Llama):
    """``llama_cpp.Llama`` with a say over weight repacking (``repack``, default
    ``repack_weights("auto")``), which its constructor does not offer."""

    def __init__(self, *args: Any, repack: bool | None = None, **kwargs: Any) -> None:
        self._repack = repack_weights() if repack is None else repack
        super().__init__(*args, **kwargs)

    # llama_cpp.Llama fills ``self.model_params`` in its constructor and loads the model from
    # it there: setting the flag as the struct is stored is the one way in before the load.
    @property
    def model_params(self) -> llama_cpp.llama_model_params:
        return self._model_params

    @model_params.setter
    def model_params(self, params: llama_cpp.llama_model_params) -> None:
        params.use_extra_bufts = self._repack
        self._model_params = params
