from __future__ import annotations

from django.db import models


class Placement(models.Model):
    """An admin's pin of a model to a worker (one row per replica).

    A pinned model is loaded when its worker starts and stays there: no keep-alive expiry, no
    eviction. Requests for it go to its pinned workers while any of them is alive; other models
    load wherever there is room.
    """

    model = models.ForeignKey(
        "models_app.ModelRecord", on_delete=models.CASCADE, related_name="placements"
    )
    worker = models.CharField(
        max_length=200, help_text="the worker's name, e.g. cuda0@gpu-host (herd worker --name)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["model", "worker"]
        constraints = [
            models.UniqueConstraint(fields=["model", "worker"], name="one_pin_per_model_worker")
        ]

    def __str__(self) -> str:
        return f"{self.model} on {self.worker}"
