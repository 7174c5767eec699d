"""How the CLI shows a stream of Ollama status objects (``herd pull``, ``herd create``): a
progress bar on stderr for each object with a ``digest`` and a ``total``, the status line on
stdout for the others."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

from tqdm import tqdm


def show_progress(events: Iterable[dict[str, Any]], write: Callable[[str], None]) -> None:
    bars: dict[str, tqdm[Any]] = {}

    def close() -> None:
        for bar in bars.values():
            bar.close()
        bars.clear()

    try:
        for event in events:
            digest = event.get("digest")
            if digest:
                bar = bars.get(digest)
                if bar is None:
                    bar = bars[digest] = tqdm(
                        total=event.get("total") or 0,
                        desc=event["status"],
                        unit="B",
                        unit_scale=True,
                        unit_divisor=1000,
                        file=sys.stderr,
                        dynamic_ncols=True,
                    )
                bar.update(int(event.get("completed") or 0) - bar.n)
            else:
                close()
                write(event["status"])
    finally:
        close()
