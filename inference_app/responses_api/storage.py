"""Stored responses: saved after their answer, found only by their owner, listed by page.

Contract: ``afind_response(id, key)`` returns the row or raises ``ResponseNotFound`` (a 404),
also for a row of another user, so that nobody learns which ids exist. The owner is the user
of the key the request came with; with authentication off there is none, and rows made then
are everyone's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from accounts.lookup import KeyInfo
from inference_app.responses_api.bodies import Item, ItemList, ResponseObject
from inference_app.responses_api.items import to_messages
from inference_app.responses_api.models import StoredResponse
from project.errors import ApiError, NotFound

# As OpenAI pages input items.
DEFAULT_PAGE, MAX_PAGE = 20, 100


class ResponseNotFound(NotFound):
    def __init__(self, response_id: str, param: str | None = None) -> None:
        super().__init__(f"Response with id '{response_id}' not found.", param=param)


def _owned(key: KeyInfo | None) -> dict[str, int | None]:
    """The filter that finds the responses of ``key``'s user (with keys off: those stored
    with keys off)."""
    return {"user_id": key.user_id if key is not None else None}


async def afind_response(
    response_id: str, key: KeyInfo | None, param: str | None = None
) -> StoredResponse:
    found = await StoredResponse.objects.filter(pk=response_id, **_owned(key)).afirst()
    if found is None:
        raise ResponseNotFound(response_id, param)
    return found


async def ado_store_response(
    response: ResponseObject | dict[str, Any],
    input_items: list[Item],
    conversation: Sequence[Mapping[str, object]],
    key: KeyInfo | None,
) -> StoredResponse:
    """Keep ``response`` (the object as the format kept it, or as ``whole`` answered it)
    with its input items and the messages to continue from: ``conversation`` (without the
    instructions) and the response's output after it."""
    messages = [*conversation, *to_messages(response["output"], conversation)]
    return await StoredResponse.objects.acreate(
        id=response["id"],
        user_id=key.user_id if key is not None else None,
        api_key_id=key.id if key is not None else None,
        model_name=response["model"],
        body_json=json.dumps(response),
        input_items_json=json.dumps(input_items),
        messages_json=json.dumps(messages),
    )


async def ado_delete_response(response_id: str, key: KeyInfo | None) -> None:
    deleted, _ = await StoredResponse.objects.filter(pk=response_id, **_owned(key)).adelete()
    if not deleted:
        raise ResponseNotFound(response_id)


def input_items_page(
    stored: StoredResponse, *, order: str, limit: int, after: str | None
) -> ItemList:
    """One page of the response's input items, as ``ResponseItemList``: ``order`` ``desc``
    (OpenAI's default) lists the last item first; ``after`` is the id of the item the page
    starts after."""
    items = stored.input_items
    if order == "desc":
        items.reverse()
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise ApiError(f"No input item with id '{after}' in this response.", param="after")
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else "",
        "last_id": page[-1]["id"] if page else "",
        "has_more": len(items) > limit,
    }
