"""What a batch line's result holds once stored, on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.batch_rows import running_batch


def batch_of_one_line(custom_id: str, **line_fields: Any) -> tuple[Any, Any]:
    """A running /v1/completions batch holding one line (pending unless told otherwise)."""
    from inference_app.batches.models import BatchLine

    batch = running_batch()
    line = BatchLine.objects.create(
        batch=batch, line_number=1, custom_id=custom_id, model_name="tiny", body={}, **line_fields
    )
    return batch, line


@pytest.mark.django_db
def test_a_result_with_a_nul_character_is_stored_and_reaches_the_output_file(
    settings: Any, tmp_path: Any
) -> None:
    # A model can generate U+0000 like any other character; PostgreSQL's jsonb refuses it.
    from inference_app.batches.models import BatchStatus, LineStatus
    from inference_app.batches.services import do_record_result

    settings.HERD_FILES_DIR = tmp_path
    batch, line = batch_of_one_line("nul", status=LineStatus.RUNNING, worker_instance="w1")
    body = {"choices": [{"index": 0, "text": "a\x00b", "finish_reason": "stop"}]}
    response = {"status_code": 200, "request_id": "r1", "body": body}

    assert do_record_result(line.pk, "w1", failed=False, response=response, error=None)

    line.refresh_from_db()
    assert line.status == LineStatus.COMPLETED
    assert line.response is not None
    assert line.response["body"]["choices"][0]["text"] == "a\ufffdb"
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert batch.output_file is not None
    (output,) = batch.output_file.path.read_text().splitlines()
    assert json.loads(output)["response"]["body"]["choices"][0]["text"] == "a\ufffdb"


# Committed rows: the runner closes its thread's database connection after each line.
@pytest.mark.django_db(transaction=True)
def test_a_line_that_breaks_every_time_fails_after_its_tries_instead_of_looping(
    settings: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inference_app.batches import runner as batch_runner
    from inference_app.batches.models import BatchLine, BatchStatus, LineStatus
    from inference_app.batches.services import do_claim_lines

    settings.HERD_FILES_DIR = tmp_path
    batch, line = batch_of_one_line("bad")

    def breaks(_line: Any, _instance: str, _record: Any) -> None:
        raise ValueError("this line cannot be stored")

    monkeypatch.setattr(batch_runner, "_run_claimed", breaks)
    for attempt in range(1, batch_runner.MAX_LINE_ATTEMPTS + 1):
        BatchLine.objects.filter(pk=line.pk).update(status=LineStatus.QUEUED)
        (claimed,) = do_claim_lines([line.pk], "w1")
        batch_runner._run_and_record(claimed, "w1", None)
        line.refresh_from_db()
        expected = LineStatus.FAILED if attempt == batch_runner.MAX_LINE_ATTEMPTS else "pending"
        assert line.status == expected, attempt

    assert line.error is not None
    assert line.error["code"] == "server_error"
    assert "cannot be stored" in line.error["message"]
    batch.refresh_from_db()
    assert batch.status == BatchStatus.COMPLETED
    assert batch.error_file is not None
