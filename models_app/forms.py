"""The "Create a variant" form of the catalog pages and the admin: a new name for a model's file
with its own system prompt, chat template and parameters, made by the same service as
``POST /api/create`` with ``from``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from accounts import audit
from accounts.models import AuditAction
from models_app.create import CreateRefused, check_create, do_create
from models_app.models import ModelRecord, ModelStatus
from models_app.names import InvalidModelName
from models_app.parameters import ParameterError, coerce_parameter
from models_app.services import ModelNotFound


def parse_parameter_lines(text: str) -> dict[str, Any]:
    """``name value`` per line, as a Modelfile's PARAMETER lines (``stop`` may repeat).
    Raises ParameterError naming the line."""
    parameters: dict[str, Any] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.strip().startswith("#"):
            continue
        name, _, value = line.strip().partition(" ")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        try:
            typed = coerce_parameter(name.lower(), value)
        except ParameterError as exc:
            raise ParameterError(f"line {number}: {exc}") from None
        if name.lower() == "stop":
            parameters.setdefault("stop", []).extend(typed)
        else:
            parameters[name.lower()] = typed
    return parameters


class VariantForm(forms.Form):
    source = forms.ModelChoiceField(
        label="From",
        queryset=ModelRecord.objects.filter(status=ModelStatus.READY),
        to_field_name="name",
        help_text="the model whose file the variant uses (shared, not copied)",
    )
    name = forms.CharField(max_length=200, help_text="name:tag, e.g. tiny-pirate or mine:v2")
    system_prompt = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="empty: the parent's",
    )
    chat_template = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "cols": 80}),
        help_text="a Jinja chat template; empty: the parent's",
    )
    parameters = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 80}),
        help_text="one per line, as in a Modelfile: temperature 0.2, stop <|end|>",
    )

    def clean_parameters(self) -> dict[str, Any]:
        try:
            return parse_parameter_lines(self.cleaned_data.get("parameters") or "")
        except ParameterError as exc:
            raise forms.ValidationError(str(exc)) from None

    def create(self, actor: AbstractBaseUser | AnonymousUser) -> ModelRecord | None:
        """Make the variant and audit it; None with the form's errors set when refused.
        Call after ``is_valid()``."""
        data = self.cleaned_data
        body: dict[str, Any] = {"model": data["name"], "from": data["source"].name}
        if data["system_prompt"]:
            body["system"] = data["system_prompt"]
        if data["chat_template"]:
            body["template"] = data["chat_template"]
        if data["parameters"]:
            body["parameters"] = data["parameters"]
        try:
            plan = check_create(body)
            record, _ = do_create(plan)
        except InvalidModelName as exc:
            self.add_error("name", str(exc))
            return None
        except ModelNotFound as exc:
            self.add_error("source", str(exc))
            return None
        except CreateRefused as exc:
            field = "chat_template" if exc.message.startswith("template") else "name"
            self.add_error(field, exc.message)
            return None
        assert record is not None
        audit.record(
            actor,  # type: ignore[arg-type]
            AuditAction.MODEL_CREATED,
            record.name,
            {"from": data["source"].name, "set": sorted(set(body) - {"model", "from"})},
        )
        return record
