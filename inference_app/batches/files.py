"""Files uploaded through ``/v1/files``: batch inputs, and the outputs batches write."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import models


class FilePurpose(models.TextChoices):
    BATCH = "batch"
    BATCH_OUTPUT = "batch_output"
    USER_DATA = "user_data"


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


class StoredFile(models.Model):
    """A file kept under ``HERD_HOME/files``; the row holds what the API shows of it."""

    id = models.CharField(primary_key=True, max_length=40, default=new_file_id, editable=False)
    purpose = models.CharField(max_length=16, choices=FilePurpose.choices)
    filename = models.CharField(max_length=255)
    size = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    # Whose it is: the user of the key that uploaded it, or of the batch that wrote it (None
    # with authentication off). Only they, and staff, see it; and the team, where that key
    # belongs to one (a key's team shares what it makes with the team's other keys).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]

    @property
    def path(self) -> Path:
        return Path(settings.HERD_FILES_DIR) / self.id

    def to_openai(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.size,
            "created_at": int(self.created_at.timestamp()),
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
        }

    @classmethod
    def create(
        cls,
        purpose: str,
        filename: str,
        content: bytes,
        user_id: int | None = None,
        team_id: int | None = None,
    ) -> StoredFile:
        """Write ``content`` to disk, then the row (a row never points at a missing file)."""
        stored = cls(
            purpose=purpose, filename=filename, size=len(content), user_id=user_id, team_id=team_id
        )
        stored.path.parent.mkdir(parents=True, exist_ok=True)
        stored.path.write_bytes(content)
        stored.save()
        return stored

    def delete_with_content(self) -> None:
        self.path.unlink(missing_ok=True)
        self.delete()
