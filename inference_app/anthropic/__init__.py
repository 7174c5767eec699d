"""Anthropic's Messages API (``POST /v1/messages``, ``POST /v1/messages/count_tokens``).

A request is validated here (``serializers``), translated into the chat request the OpenAI
endpoint takes (``translation``) so that one serializer builds every chat payload, and
answered in Anthropic's message objects and SSE events (``format``).
"""
