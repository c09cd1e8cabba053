"""The on-disk form of one ledger entry, shared by the writer and the verifier.

A line is the canonical JSON of the entry body (sorted keys, no spaces) with the entry
hash spliced in as the last member::

    {"action":...,"actor":...,"payload":{...},"prev":"<64 hex>","seq":n,"time":...,"hash":"<64 hex>"}

``hash`` is sha256 of the exact body bytes, so a verifier strips the fixed-length suffix and
hashes what is left: no re-serialisation, which keeps checking 100,000 entries fast and means
any changed byte is caught, whatever a JSON parser would make of it.

Entries written with a :class:`deid.ledger.auth.LedgerAuth` carry ``mac`` between the body
and ``hash``: an HMAC of the canonical body, spliced the same way so that it is checked by
stripping another fixed-length suffix, and covered by ``hash`` so checkpoints seal it too::

    {...,"time":...,"mac":"<64 hex>","hash":"<64 hex>"}
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deid.ledger.auth import LedgerAuth

GENESIS_HASH = "0" * 64
CHECKPOINT_ACTION = "checkpoint"
RECOVERY_ACTION = "ledger.recovered"
RESERVED_ACTIONS = frozenset({CHECKPOINT_ACTION, RECOVERY_ACTION})
CHECKPOINT_PREFIX = b'{"action":"checkpoint",'
_HASH_PREFIX = ',"hash":"'
_MAC_PREFIX = ',"mac":"'
# ',"hash":"' + 64 hex + '"}'
HASH_SUFFIX_LEN = len(_HASH_PREFIX) + 64 + 2
MAC_SUFFIX_LEN = len(_MAC_PREFIX) + 64 + 2


def canonical(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def encode_entry(body: dict[str, Any], auth: LedgerAuth | None = None) -> tuple[bytes, str]:
    """The line (with newline) and the hash of an entry body, with its MAC when ``auth`` is given."""
    text = canonical(body)
    if auth is not None:
        text = text[:-1] + _MAC_PREFIX + auth.entry_mac(text.encode("utf-8")) + '"}'
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    line = text[:-1] + _HASH_PREFIX + digest + '"}\n'
    return line.encode("utf-8"), digest


def split_line(line: bytes) -> tuple[bytes, str] | None:
    """Body bytes and claimed hash of a line (without newline), or None if it is not shaped like one."""
    if len(line) <= HASH_SUFFIX_LEN or not line.endswith(b'"}'):
        return None
    suffix = line[-HASH_SUFFIX_LEN:]
    if not suffix.startswith(_HASH_PREFIX.encode()):
        return None
    claimed = suffix[len(_HASH_PREFIX) : -2].decode("ascii", errors="replace")
    return line[:-HASH_SUFFIX_LEN] + b"}", claimed


def split_mac(body: bytes) -> tuple[bytes, str] | None:
    """What the MAC covers and the claimed MAC of an entry body, or None if it carries no MAC."""
    if len(body) <= MAC_SUFFIX_LEN:
        return None
    suffix = body[-MAC_SUFFIX_LEN:]
    if not suffix.startswith(_MAC_PREFIX.encode()) or not suffix.endswith(b'"}'):
        return None
    return body[:-MAC_SUFFIX_LEN] + b"}", suffix[len(_MAC_PREFIX) : -2].decode("ascii", errors="replace")


def mac_matches(auth: LedgerAuth, body: bytes) -> bool:
    """Whether an entry body (hash stripped) carries a MAC under ``auth``'s key."""
    parts = split_mac(body)
    return parts is not None and hmac.compare_digest(auth.entry_mac(parts[0]), parts[1])


def checkpoint_message(covers_seq: int, covers_hash: str) -> bytes:
    """What a checkpoint signs: the head it seals. The head hash chains every earlier entry."""
    return f"deid-ledger-checkpoint/v1\n{covers_seq}\n{covers_hash}".encode("ascii")
