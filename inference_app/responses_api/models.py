"""Stored responses: one row per response created with ``store`` (the default).

A row keeps the response object as the API answered it, the request's input items (for
``GET /v1/responses/{id}/input_items``), and the chat messages of the whole conversation up to
and including the response's output, without its ``instructions``: a request naming it as
``previous_response_id`` starts from those messages. Rows belong to the user of the key that
made them (none with authentication off); no other user can see them.
"""

from __future__ import annotations

import json
import secrets

from django.conf import settings
from django.db import models

from inference_app.openai.bodies import ChatMessageIn
from inference_app.responses_api.bodies import Item, ResponseObject


def new_response_id() -> str:
    return f"resp_{secrets.token_hex(24)}"


class StoredResponse(models.Model):
    id = models.CharField(primary_key=True, max_length=64, default=new_response_id, editable=False)
    # Whose it is: a user's responses are theirs, whichever of their keys asks.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    model_name = models.CharField(max_length=200)
    # JSON text, not JSON columns: PostgreSQL's jsonb cannot hold U+0000, which a model may
    # write like any character, and a stored response answers exactly as it was answered.
    body_json = models.TextField()
    input_items_json = models.TextField(default="[]")
    messages_json = models.TextField(default="[]")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "created_at"])]

    def __str__(self) -> str:
        return self.id

    # The JSON columns hold what ``storage.ado_store_response`` wrote from these types.

    @property
    def body(self) -> ResponseObject:
        body: ResponseObject = json.loads(self.body_json)
        return body

    @property
    def input_items(self) -> list[Item]:
        items: list[Item] = json.loads(self.input_items_json)
        return items

    @property
    def messages(self) -> list[ChatMessageIn]:
        messages: list[ChatMessageIn] = json.loads(self.messages_json)
        return messages

    def to_openai(self) -> ResponseObject:
        return self.body
