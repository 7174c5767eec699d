"""OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from typing import Any

from django.http import JsonResponse

from project.validation import first_error


class OpenAIError(Exception):
    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type_: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type_
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JsonResponse:
        response = JsonResponse(self.body(), status=self.status)
        for name, value in self.headers.items():
            response[name] = value
        return response


def model_not_found(name: str) -> OpenAIError:
    return OpenAIError(
        f"The model '{name}' does not exist", status=404, param="model", code="model_not_found"
    )


def from_validation_errors(errors: Any) -> OpenAIError:
    """The first DRF validation error, named by its parameter path (``messages.0.role``)."""
    param, message = first_error(errors)
    return OpenAIError(
        f"{param}: {message}" if param else message,
        status=400,
        param=param,
        code="invalid_value",
    )
