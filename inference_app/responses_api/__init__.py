"""OpenAI's Responses API (``/v1/responses``) on Herd's chat machinery.

A request's input items (``items``) become chat messages, and the request a chat request
(``serializer``), so the payload a worker receives is the one ``/v1/chat/completions`` would
send. The worker's events become a ``response`` object, whole or as typed stream events
(``format``); a response asked to be stored (``store``, the default) is kept in the database
with the messages needed to continue from it (``models``, ``storage``), so any web process
serves ``previous_response_id``, ``GET`` and ``DELETE`` (``views``).
"""
