"""Clinician feedback: the de-identified exchanges it refers to, the ratings, and preference pairs from them.

For a clinician to rate an answer later, the API must remember what was asked and answered
under each response id. It keeps that only de-identified (the API's PHI detector, every
span replaced by its ``[TYPE]`` tag, whatever ``serve.redact_phi`` says), only while
``serve.feedback`` is on, and only the newest ``serve.feedback_max_answers`` exchanges: a
bounded SQLite file under the appliance home (``<home>/feedback/answers.sqlite3``, mode
0600). Without a loaded detector nothing is kept, since nothing may be kept raw. Ratings
are kept with a copy of their exchange, so exporting them does not depend on the bound.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from serve.audit.protocol import RequestRecord
from serve.audit.service import RequestLedger
from serve.auth.service import Principal
from serve.errors import ApiError, NotFoundError
from serve.feedback.protocol import FeedbackRequest, FeedbackResponse, Rating
from serve.privacy.service import PromptPrivacy

ENDPOINT = "/v1/feedback"
STORE_FOLDER = "feedback"
STORE_FILE = "answers.sqlite3"
SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    response_id TEXT PRIMARY KEY, endpoint TEXT NOT NULL, prompt TEXT NOT NULL, answer TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY, response_id TEXT NOT NULL, rating TEXT NOT NULL, correction TEXT,
    prompt TEXT NOT NULL, answer TEXT NOT NULL, key_id TEXT NOT NULL, created REAL NOT NULL);
"""


def store_path(home: Path) -> Path:
    return Path(home) / STORE_FOLDER / STORE_FILE


class DetectorNotReadyError(ApiError):
    status_code = 503
    error_type = "server_error"
    code = "phi_detector_not_ready"


@dataclass(frozen=True)
class Rated:
    """One stored rating with its (de-identified) exchange."""

    response_id: str
    rating: Rating
    prompt: str
    answer: str
    correction: str | None


class FeedbackStore:
    """A bounded SQLite file of de-identified exchanges and ratings; safe to share between threads."""

    def __init__(self, path: Path, max_rows: int) -> None:
        self.path = Path(path)
        self.max_rows = max_rows
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fresh = not self.path.exists()
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            if fresh:
                os.chmod(self.path, 0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(SCHEMA)
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _trim(self, db: sqlite3.Connection, table: str) -> None:
        """Drop the oldest rows beyond the bound: one indexed delete, not a scan of the table."""
        db.execute(f"DELETE FROM {table} WHERE rowid <= (SELECT MAX(rowid) FROM {table}) - ?", (self.max_rows,))

    def remember(self, response_id: str, endpoint: str, prompt: str, answer: str) -> None:
        with self._lock:
            db = self._connection()
            db.execute("INSERT OR IGNORE INTO answers VALUES (?, ?, ?, ?, ?)",
                       (response_id, endpoint, prompt, answer, time.time()))
            self._trim(db, "answers")

    def exchange(self, response_id: str) -> tuple[str, str] | None:
        with self._lock:
            row = self._connection().execute(
                "SELECT prompt, answer FROM answers WHERE response_id = ?", (response_id,)).fetchone()
        return (row[0], row[1]) if row else None

    def rate(self, response_id: str, rating: Rating, correction: str | None, key_id: str,
             exchange: tuple[str, str]) -> str:
        feedback_id = f"fb-{uuid.uuid4().hex}"
        with self._lock:
            db = self._connection()
            db.execute("INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (feedback_id, response_id, rating.value, correction, exchange[0], exchange[1], key_id,
                        time.time()))
            self._trim(db, "feedback")
        return feedback_id

    def ratings(self) -> Iterator[Rated]:
        """Every stored rating, oldest first."""
        with self._lock:
            rows = self._connection().execute(
                "SELECT response_id, rating, prompt, answer, correction FROM feedback ORDER BY rowid").fetchall()
        for response_id, rating, prompt, answer, correction in rows:
            yield Rated(response_id, Rating(rating), prompt, answer, correction)


def preference_pairs(ratings: list[Rated], *, max_per_prompt: int = 8) -> list[dict[str, str]]:
    """``{"prompt", "chosen", "rejected"}`` pairs from ratings.

    A correction is preferred to the answer it corrects; for one prompt, an answer rated up
    is preferred to one rated down (at most ``max_per_prompt`` such pairs per prompt, so
    one popular question does not outweigh the rest). A lone rating without a correction
    has nothing to be compared with and gives no pair.
    """
    pairs: list[dict[str, str]] = []
    seen: set[tuple[str, str, str]] = set()

    def add(prompt: str, chosen: str, rejected: str) -> None:
        key = (prompt, chosen.strip(), rejected.strip())
        if key[1] and key[2] and key[1] != key[2] and key not in seen:
            seen.add(key)
            pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})

    by_prompt: dict[str, dict[Rating, list[str]]] = {}
    for rated in ratings:
        if rated.correction:
            add(rated.prompt, rated.correction, rated.answer)
        by_prompt.setdefault(rated.prompt, {Rating.up: [], Rating.down: []})[rated.rating].append(rated.answer)
    for prompt, answers in by_prompt.items():
        combined = [(good, bad) for good in answers[Rating.up] for bad in answers[Rating.down]]
        for good, bad in combined[:max_per_prompt]:
            add(prompt, good, bad)
    return pairs


class FeedbackService:
    """Keeps exchanges (when on) and takes ratings; the privacy getter follows the API's detector as it loads."""

    def __init__(self, store: FeedbackStore | None, privacy: Callable[[], PromptPrivacy], ledger: RequestLedger) -> None:
        self.store = store
        self._privacy = privacy
        self.ledger = ledger
        self._redactor: PromptPrivacy | None = None

    @property
    def enabled(self) -> bool:
        return self.store is not None

    def deidentify(self, texts: list[str]) -> list[str] | None:
        """Every detected span replaced by its tag; None while no detector is loaded (then nothing is kept)."""
        detector = self._privacy().detector
        if detector is None:
            return None
        if self._redactor is None or self._redactor.detector is not detector:
            self._redactor = PromptPrivacy(detector, redact_prompts=True)
        return self._redactor.screen(texts).texts

    def remember(self, response_id: str, endpoint: str, prompt: str, answer: str) -> bool:
        """Blocking (the detector runs here): call it from a worker thread."""
        if self.store is None or not prompt.strip() or not answer.strip():
            return False
        clean = self.deidentify([prompt, answer])
        if clean is None:
            return False
        self.store.remember(response_id, endpoint, clean[0], clean[1])
        return True

    def rate(self, body: FeedbackRequest, principal: Principal) -> FeedbackResponse:
        """Blocking: de-identifies the correction and writes the rating and a ledger entry (no text)."""
        if self.store is None:
            raise NotFoundError("feedback is switched off on this server (serve.feedback)", param="response_id")
        exchange = self.store.exchange(body.response_id)
        if exchange is None:
            raise NotFoundError("no answer with this id is kept: unknown, too old, or given before feedback was on",
                                param="response_id")
        correction = None
        if body.correction is not None:
            clean = self.deidentify([body.correction])
            if clean is None:
                raise DetectorNotReadyError("the PHI detector is still loading; retry shortly")
            correction = clean[0]
        started = time.perf_counter()
        feedback_id = self.store.rate(body.response_id, body.rating, correction, principal.key_id, exchange)
        self.ledger.record(RequestRecord(
            request_id=feedback_id, endpoint=ENDPOINT, key_id=principal.key_id, role=principal.role.value,
            latency_ms=int((time.perf_counter() - started) * 1000), status=200,
            reason=f"feedback_{body.rating.value}" + ("_corrected" if correction else ""),
        ))
        return FeedbackResponse(id=feedback_id, response_id=body.response_id, rating=body.rating,
                                corrected=correction is not None)
