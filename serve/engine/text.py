"""Turning generated token bytes into text deltas that never split a character or leak a stop string."""

from __future__ import annotations

import codecs


class TextAssembler:
    """Holds back just enough text to recognise a stop string that arrives over several tokens."""

    def __init__(self, stops: tuple[str, ...]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._stops = tuple(stop for stop in stops if stop)
        self._pending = ""

    def feed(self, data: bytes) -> tuple[str, bool]:
        """Return the text safe to emit now and whether a stop string was reached."""
        self._pending += self._decoder.decode(data)
        cut = min((index for index in (self._pending.find(stop) for stop in self._stops) if index >= 0), default=-1)
        if cut >= 0:
            emit, self._pending = self._pending[:cut], ""
            return emit, True
        hold = self._partial_stop_length()
        emit = self._pending[: len(self._pending) - hold]
        self._pending = self._pending[len(self._pending) - hold :]
        return emit, False

    def flush(self) -> str:
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        return rest

    def _partial_stop_length(self) -> int:
        longest = 0
        for stop in self._stops:
            for size in range(min(len(stop) - 1, len(self._pending)), longest, -1):
                if self._pending.endswith(stop[:size]):
                    longest = size
                    break
        return longest
