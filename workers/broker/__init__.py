"""What the web and worker processes share: task names and the typed messages between them
(``wire``), Redis keys, queue and lane names, fair turns, placement, rerouting and the worker
registry.

Both processes import it; it imports neither llama.cpp nor the engine.
"""
