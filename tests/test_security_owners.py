"""Files, batches and batch outputs belong to the user of the key that made them: another
user's key finds none of them (404, as for an id that does not exist, and absent from its
lists), and can neither cancel nor delete them; the owner's other keys and staff can. A key
with a team shares what it makes with the team's keys."""

from __future__ import annotations

import uuid

from tests.isolation import (
    another_key,
    chat_line,
    create_batch,
    new_member,
    upload_batch_input,
    wait_for_batch,
)
from tests.keyed import KeyedServer, KeyedWeb


def test_another_user_finds_none_of_a_users_files_and_batches(keyed_server: KeyedServer) -> None:
    bob, alice = new_member(keyed_server), new_member(keyed_server)
    file_id = upload_batch_input(keyed_server, bob.secret, [chat_line("one", "tiny")])
    created = create_batch(keyed_server, bob.secret, file_id)
    assert created.status_code == 200, created.text
    batch_id = created.json()["id"]
    done = wait_for_batch(keyed_server, bob.secret, batch_id, ("completed",), 60)
    output_id = done["output_file_id"]
    assert output_id

    reads = [
        f"/v1/files/{file_id}",
        f"/v1/files/{file_id}/content",
        f"/v1/files/{output_id}",
        f"/v1/files/{output_id}/content",
        f"/v1/batches/{batch_id}",
    ]
    for path in reads:
        reply = keyed_server.call("GET", path, alice.secret)
        assert reply.status_code == 404, (path, reply.text)
        assert reply.json()["error"]["code"] == "not_found"
    listed = keyed_server.call("GET", "/v1/files", alice.secret).json()["data"]
    assert not {file_id, output_id} & {f["id"] for f in listed}
    batches = keyed_server.call("GET", "/v1/batches", alice.secret).json()["data"]
    assert batch_id not in {b["id"] for b in batches}
    # Alice cannot list past Bob's batch either: its id is not one she knows.
    after = keyed_server.call("GET", "/v1/batches", alice.secret, params={"after": batch_id})
    assert after.status_code == 404
    # Nor run a batch on his file, cancel his batch, or delete his files.
    assert create_batch(keyed_server, alice.secret, file_id).status_code == 404
    cancel = keyed_server.call("POST", f"/v1/batches/{batch_id}/cancel", alice.secret)
    assert cancel.status_code == 404, cancel.text
    for target in (file_id, output_id):
        deleted = keyed_server.call("DELETE", f"/v1/files/{target}", alice.secret)
        assert deleted.status_code == 404, deleted.text

    # Bob's other key, and staff, see all of it as it was.
    bobs_other = another_key(keyed_server, bob)
    for secret in (bob.secret, bobs_other.secret, keyed_server.staff_secret):
        for path in reads:
            assert keyed_server.call("GET", path, secret).status_code == 200, path
        listed = keyed_server.call("GET", "/v1/files", secret).json()["data"]
        assert {file_id, output_id} <= {f["id"] for f in listed}
        batches = keyed_server.call("GET", "/v1/batches", secret).json()["data"]
        assert batch_id in {b["id"] for b in batches}
    assert keyed_server.call("GET", f"/v1/batches/{batch_id}", bob.secret).json()["status"] == (
        "completed"
    )


def test_another_user_cannot_cancel_a_running_batch(keyed_web: KeyedWeb) -> None:
    bob, alice = new_member(keyed_web), new_member(keyed_web)
    # Long enough to be running, or waiting, when Alice tries.
    lines = [chat_line(f"line-{n}", "slow", max_tokens=64) for n in range(24)]
    file_id = upload_batch_input(keyed_web, bob.secret, lines)
    batch_id = create_batch(keyed_web, bob.secret, file_id).json()["id"]
    cancel = keyed_web.call("POST", f"/v1/batches/{batch_id}/cancel", alice.secret)
    assert cancel.status_code == 404, cancel.text
    status = keyed_web.call("GET", f"/v1/batches/{batch_id}", bob.secret).json()["status"]
    assert status not in ("cancelling", "cancelled")
    # Bob cancels it himself, so that it does not hold the lane.
    assert keyed_web.call("POST", f"/v1/batches/{batch_id}/cancel", bob.secret).status_code == 200


def test_a_teams_keys_share_their_files_and_batches_and_no_one_else_sees_them(
    keyed_server: KeyedServer,
) -> None:
    """A key with a team shares what it makes with the team's other keys (other users);
    a user outside the team, and the same users' keys without the team, still find nothing."""
    team = f"team-{uuid.uuid4().hex[:6]}"
    alice, carol = (
        new_member(keyed_server, "--team", team),
        new_member(keyed_server, "--team", team),
    )
    outsider = new_member(keyed_server)
    file_id = upload_batch_input(keyed_server, alice.secret, [chat_line("one", "tiny")])
    batch_id = create_batch(keyed_server, alice.secret, file_id).json()["id"]
    done = wait_for_batch(keyed_server, carol.secret, batch_id, ("completed",), 60)
    output_id = done["output_file_id"]
    reads = [f"/v1/files/{file_id}/content", f"/v1/files/{output_id}/content"]
    for path in reads:
        assert keyed_server.call("GET", path, carol.secret).status_code == 200, path
        assert keyed_server.call("GET", path, outsider.secret).status_code == 404, path
    listed = keyed_server.call("GET", "/v1/batches", carol.secret).json()["data"]
    assert batch_id in {b["id"] for b in listed}
    listed = keyed_server.call("GET", "/v1/batches", outsider.secret).json()["data"]
    assert batch_id not in {b["id"] for b in listed}
    # What Carol makes with a key of hers that has no team stays hers.
    carols_own = another_key(keyed_server, carol)
    private = upload_batch_input(keyed_server, carols_own.secret, [chat_line("two", "tiny")])
    assert keyed_server.call("GET", f"/v1/files/{private}", alice.secret).status_code == 404
    assert keyed_server.call("GET", f"/v1/files/{private}", carol.secret).status_code == 200
