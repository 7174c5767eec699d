"""llama-cpp-python's own server, with its model loaded as Herd loads one (weight repacking as
``workers.engine.loading`` decides):
``python bench/llama_cpp_python_server.py on|off SERVER-ARGS``."""

from __future__ import annotations

import runpy
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import llama_cpp

from workers.engine.loading import Llama


def main() -> None:
    repack = sys.argv.pop(1) == "on"

    class PeerLlama(Llama):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, repack=repack, **kwargs)

    # The server makes its model with llama_cpp.Llama(...), looked up when it loads one.
    llama_cpp.Llama = PeerLlama  # type: ignore[misc]
    sys.argv[0] = "llama_cpp.server"
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
