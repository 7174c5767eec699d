"""llama.cpp alone: loading a model, the engines and their batching step, sampling, logprobs,
the vocabulary, prompts and chat templates, tool-call parsing, quantizing.

Nothing here imports Django, Redis or Celery, or any other part of Herd: the engine can be used
and tested from a plain Python script. What it needs from the worker (settings, the device,
callbacks) is passed in.
"""
