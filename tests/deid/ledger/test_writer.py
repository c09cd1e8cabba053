"""Writing: chains continue across writers and processes, crashes leave a repairable tail, payloads stay PHI-free."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from deid.errors import LedgerError
from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.verify import ProblemKind, verify_ledger
from deid.ledger.writer import LedgerWriter
from tests.deid.ledger.conftest import LedgerFactory, api_payload, document_payload


def entries(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_reopening_continues_the_chain(keystore: Keystore, tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    secret = keystore.secret("document-id")
    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run", checkpoint_every=100) as writer:
        assert [writer.append("deid.document", document_payload(i, secret)) for i in range(3)] == [0, 1, 2]
    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="api") as writer:
        assert writer.append("api.request", api_payload(1)) == 4  # 3 is the first writer's closing checkpoint
    written = entries(path)
    assert [e["action"] for e in written] == ["deid.document"] * 3 + ["checkpoint", "api.request", "checkpoint"]
    assert all(later["prev"] == earlier["hash"] for earlier, later in itertools.pairwise(written))
    assert verify_ledger(path, keystore.public_keys()).ok


def test_checkpoint_interval_counts_entries_in_the_file_not_per_writer(keystore: Keystore, tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    first = LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="a", checkpoint_every=4)
    second = LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="b", checkpoint_every=4)
    for index in range(4):
        (first if index % 2 else second).append("api.request", api_payload(index))
    assert [e["action"] for e in entries(path)][-1] == "checkpoint"
    first.close()
    second.close()
    result = verify_ledger(path, keystore.public_keys())
    assert result.ok and result.checkpoints == 1 and result.entries == 5


def test_nothing_to_seal_writes_no_checkpoint(keystore: Keystore, tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="a"):
        pass
    assert path.read_bytes() == b""
    assert verify_ledger(path, keystore.public_keys()).ok


def test_ledger_actions_are_reserved(keystore: Keystore, tmp_path: Path) -> None:
    with (
        LedgerWriter.open(
            tmp_path / "l.jsonl", keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="a"
        ) as writer,
        pytest.raises(LedgerError, match="written by the ledger itself"),
    ):
        writer.append("checkpoint", {"covers_seq": 1})
    with pytest.raises(LedgerError):
        LedgerWriter.open(tmp_path / "l.jsonl", keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="has spaces")


def _append_many(ledger: str, keystore_dir: str, actor: str, count: int, start: multiprocessing.Event) -> None:
    store = Keystore.open(Path(keystore_dir))
    start.wait(30)
    with LedgerWriter.open(
        Path(ledger), store.signing_key(), auth=LedgerAuth.from_keystore(store), actor=actor, checkpoint_every=7, fsync=False
    ) as writer:
        for index in range(count):
            writer.append("api.request", {**api_payload(index), "request_id": f"{actor}-{index:05d}"})
            time.sleep(0.002)  # give the other process a chance to take the lock in between


def test_two_processes_appending_at_once_keep_the_chain_valid(keystore: Keystore, tmp_path: Path) -> None:
    path = tmp_path / "l.jsonl"
    keystore.signing_key()
    context = multiprocessing.get_context("fork")
    start = context.Event()
    workers = [
        context.Process(target=_append_many, args=(str(path), str(tmp_path / "keystore"), actor, 150, start))
        for actor in ("proc-a", "proc-b")
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    result = verify_ledger(path, keystore.public_keys())
    assert result.ok, result.problem
    written = entries(path)
    requests = [e for e in written if e["action"] == "api.request"]
    assert len(requests) == 300
    assert len({e["payload"]["request_id"] for e in requests}) == 300
    actors = [e["actor"] for e in requests]
    switches = sum(1 for a, b in itertools.pairwise(actors) if a != b)
    assert switches > 1, "the two writers did not actually interleave"


def test_crash_mid_write_is_reported_then_repaired_on_reopen(keystore: Keystore, make_ledger: LedgerFactory) -> None:
    path = make_ledger(documents=6, every=100)
    partial = b'{"action":"deid.document","actor":"deid-run","payload":{"document_id":"ab'
    with open(path, "ab") as handle:
        handle.write(partial)
    torn = verify_ledger(path, keystore.public_keys())
    assert torn.problem is not None and torn.problem.kind is ProblemKind.torn_tail
    assert torn.verified == torn.entries == 7

    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run") as writer:
        writer.append("deid.document", document_payload(99, keystore.secret("document-id")))
    repaired = verify_ledger(path, keystore.public_keys())
    assert repaired.ok, repaired.problem
    assert repaired.recoveries == 1
    recovery = next(e for e in entries(path) if e["action"] == "ledger.recovered")
    assert recovery["payload"]["discarded_bytes"] == len(partial)


KILLED_WRITER = """
import sys
from pathlib import Path
from deid.keystore import Keystore
from deid.ledger.auth import LedgerAuth
from deid.ledger.writer import LedgerWriter
store = Keystore.open(Path(sys.argv[2]))
writer = LedgerWriter.open(
    Path(sys.argv[1]), store.signing_key(), auth=LedgerAuth.from_keystore(store), actor="victim", checkpoint_every=50, fsync=False
)
print("ready", flush=True)
index = 0
while True:
    writer.append("api.request", {"request_id": f"r{index}", "prompt_tokens": index, "phi_types": ["DATE"] * 200})
    index += 1
"""


def test_killed_writer_leaves_a_ledger_that_verifies_up_to_its_last_complete_entry(
    keystore: Keystore, tmp_path: Path
) -> None:
    path = tmp_path / "l.jsonl"
    keystore.signing_key()
    child = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path), str(tmp_path / "keystore")],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[3],
    )
    assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
    deadline = time.monotonic() + 10
    while (not path.exists() or path.stat().st_size < 200_000) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    result = verify_ledger(path, keystore.public_keys())
    assert result.verified == result.entries > 0
    assert result.problem is not None and result.problem.kind in (ProblemKind.truncated, ProblemKind.torn_tail)
    LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="next").close()
    assert verify_ledger(path, keystore.public_keys()).ok


def test_a_writer_is_not_shared_across_fork(keystore: Keystore, tmp_path: Path) -> None:
    writer = LedgerWriter.open(tmp_path / "l.jsonl", keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="parent")
    pid = os.fork()
    if pid == 0:  # child: must refuse, exit code says whether it did
        try:
            writer.append("api.request", api_payload(1))
        except LedgerError:
            os._exit(0)
        os._exit(1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    writer.append("api.request", api_payload(2))
    writer.close()
    assert verify_ledger(tmp_path / "l.jsonl", keystore.public_keys()).ok


def test_entries_larger_than_a_read_block_are_found_at_the_tail(keystore: Keystore, tmp_path: Path) -> None:
    """A document with thousands of spans makes a line longer than the backward scan's block."""
    path = tmp_path / "l.jsonl"
    secret = keystore.secret("document-id")
    big = document_payload(1, secret, persons=3000)
    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run", checkpoint_every=2) as writer:
        writer.append("deid.document", big)
        writer.append("deid.document", big)
        writer.append("deid.document", big)
    assert max(len(line) for line in path.read_bytes().splitlines()) > 3 * 65536
    with LedgerWriter.open(path, keystore.signing_key(), auth=LedgerAuth.from_keystore(keystore), actor="deid-run", checkpoint_every=2) as writer:
        assert writer.append("deid.document", big) == 5
    result = verify_ledger(path, keystore.public_keys())
    assert result.ok and result.checkpoints == 3
