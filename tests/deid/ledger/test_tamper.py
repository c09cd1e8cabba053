"""Every way of altering a closed ledger is caught, named with the right kind and the first bad entry."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.entry import encode_entry
from deid.ledger.verify import ProblemKind, ledger_head, verify_ledger
from deid.ledger.writer import LedgerWriter
from tests.deid.ledger.conftest import LedgerFactory

# 20 documents, a checkpoint after every 5 entries: documents at 0-4, 6-10, 12-16, 18-22;
# checkpoints at 5, 11, 17 and 23 (the last also seals the ledger).
CHECKPOINTS = (5, 11, 17, 23)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))


def body_of(line: bytes) -> dict[str, Any]:
    entry = json.loads(line)
    del entry["hash"]
    return entry


def rehashed(body: dict[str, Any]) -> bytes:
    return encode_entry(body)[0]


def problem_of(path: Path, keystore: Keystore, **options: Any) -> tuple[ProblemKind, int]:
    result = verify_ledger(path, keystore.public_keys(), **options)
    assert not result.ok
    assert result.problem is not None
    return result.problem.kind, result.problem.sequence


def test_intact_ledger_verifies(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    result = verify_ledger(path, keystore.public_keys())
    assert result.ok, result.problem
    assert (result.entries, result.checkpoints, result.head_seq, result.sealed_seq) == (24, 4, 23, 23)
    assert result.signatures_checked and result.key_ids == [keystore.key_id()]
    assert result.head_hash == ledger_head(path) == json.loads(lines_of(path)[-1])["hash"]


def test_flipped_byte_is_an_edit(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    lines = lines_of(path)
    lines[7] = lines[7].replace(b'"PATIENT":2', b'"PATIENT":3', 1)
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.edited, 7)


def test_edit_with_recomputed_hash_is_caught_by_the_next_link(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    lines = lines_of(path)
    body = body_of(lines[8])
    body["payload"]["entity_counts"]["PATIENT"] = 0
    lines[8] = rehashed(body)
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.edited, 8)


def test_rewriting_the_whole_tail_fails_the_checkpoint_signature(
    make_ledger: LedgerFactory, keystore: Keystore
) -> None:
    """An attacker without the key who re-chains every later entry still cannot re-sign the head."""
    path = make_ledger()
    lines = lines_of(path)
    prev = body_of(lines[19])["prev"]
    for index in range(19, len(lines)):
        body = body_of(lines[index])
        body["prev"] = prev
        if index == 19:
            body["payload"]["source"] = "other.txt"
        if body["action"] == "checkpoint":
            body["payload"]["covers_hash"] = prev
        lines[index], prev = encode_entry(body)
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.bad_signature, 23)


@pytest.mark.parametrize("victim", [0, 9, CHECKPOINTS[1]])
def test_deleted_entry(make_ledger: LedgerFactory, keystore: Keystore, victim: int) -> None:
    path = make_ledger()
    lines = lines_of(path)
    del lines[victim]
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.deleted, victim)


def test_deleted_run_of_entries(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    lines = lines_of(path)
    del lines[12:15]
    write_lines(path, lines)
    result = verify_ledger(path, keystore.public_keys())
    assert result.problem is not None
    assert (result.problem.kind, result.problem.sequence) == (ProblemKind.deleted, 12)
    assert "12 to 14" in result.problem.detail
    assert result.verified == 12


def test_inserted_copy_of_an_earlier_entry(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    lines = lines_of(path)
    lines.insert(14, lines[2])
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.inserted, 14)


def test_inserted_forged_entry_that_links_correctly(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    lines = lines_of(path)
    forged = body_of(lines[14])
    forged["payload"]["source"] = "forged.txt"
    lines.insert(14, rehashed(forged))
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.inserted, 14)


def test_swapped_entries_are_reordered(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    lines = lines_of(path)
    lines[8], lines[9] = lines[9], lines[8]
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.reordered, 8)


def test_entry_moved_to_the_end_is_reordered(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    lines = lines_of(path)
    lines.append(lines.pop(3))
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.reordered, 3)


def test_truncation_that_removes_the_closing_checkpoint(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    path = make_ledger()
    write_lines(path, lines_of(path)[:-2])
    assert problem_of(path, keystore) == (ProblemKind.truncated, CHECKPOINTS[2] + 1)
    accepted = verify_ledger(path, keystore.public_keys(), allow_unsealed=True)
    assert accepted.ok and accepted.unsealed == 4


def test_truncation_at_a_checkpoint_is_caught_against_the_cited_head(
    make_ledger: LedgerFactory, keystore: Keystore
) -> None:
    path = make_ledger()
    cited = ledger_head(path)
    write_lines(path, lines_of(path)[: CHECKPOINTS[2] + 1])
    assert verify_ledger(path, keystore.public_keys()).ok  # the prefix alone is self-consistent
    assert problem_of(path, keystore, expected_head=cited) == (ProblemKind.truncated, CHECKPOINTS[2] + 1)


def test_torn_tail_is_reported_and_the_complete_entries_still_verify(
    make_ledger: LedgerFactory, keystore: Keystore
) -> None:
    path = make_ledger()
    lines = lines_of(path)
    write_lines(path, [*lines[:-1], lines[-1][:40]])
    result = verify_ledger(path, keystore.public_keys())
    assert result.problem is not None
    assert (result.problem.kind, result.problem.sequence) == (ProblemKind.torn_tail, 23)
    assert result.verified == 23 and result.torn_tail_bytes == 40


def test_wrong_key_is_named(make_ledger: LedgerFactory, keystore: Keystore, tmp_path: Path) -> None:
    path = make_ledger()
    stranger = Keystore.open(tmp_path / "other")
    result = verify_ledger(path, [stranger.public_key_pem()])
    assert result.problem is not None
    assert (result.problem.kind, result.problem.sequence) == (ProblemKind.wrong_key, CHECKPOINTS[0])
    assert keystore.key_id() in result.problem.detail


def test_old_ledgers_verify_after_rotation(tmp_path: Path, keystore: Keystore, make_ledger: LedgerFactory) -> None:
    path = make_ledger(documents=4, every=100)
    keystore.rotate()
    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run") as writer:
        writer.append("deid.document", {"documents": 1})
    result = verify_ledger(path, keystore.public_keys())
    assert result.ok, result.problem
    assert len(result.key_ids) == 2
    only_new = verify_ledger(path, [keystore.public_key_pem()])
    assert only_new.problem is not None and only_new.problem.kind is ProblemKind.wrong_key


def test_exported_pem_file_verifies(make_ledger: LedgerFactory, keystore: Keystore, tmp_path: Path) -> None:
    path = make_ledger(documents=3)
    pem = keystore.export_public_key("ledger", tmp_path / "auditor.pem")
    assert verify_ledger(path, [pem.read_bytes()]).ok


def test_without_keys_only_the_chain_is_checked(make_ledger: LedgerFactory) -> None:
    result = verify_ledger(make_ledger())
    assert result.ok and not result.signatures_checked and result.checkpoints == 4


def test_checkpoint_moved_to_cover_another_head_is_an_edit(make_ledger: LedgerFactory, keystore: Keystore) -> None:
    """Re-hashing a checkpoint that now claims to cover a different entry does not make it valid."""
    path = make_ledger()
    lines = lines_of(path)
    body = body_of(lines[CHECKPOINTS[1]])
    body["payload"]["covers_seq"] = CHECKPOINTS[1] - 2
    lines[CHECKPOINTS[1]] = rehashed(body)
    write_lines(path, lines)
    assert problem_of(path, keystore) == (ProblemKind.edited, CHECKPOINTS[1])
