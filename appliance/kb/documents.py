"""Readers that turn approved source files into documents made of titled sections.

A document is the unit of idempotence: its content hash decides whether re-adding it does
anything. Sections keep the structure a clinician would recognise (a heading, a MedQuAD
question type) so that chunks never straddle two topics.
"""

from __future__ import annotations

import gzip
import hashlib
import html
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from html.parser import HTMLParser
from pathlib import Path

from deid.errors import InputError

FORMATS = ("markdown", "text", "html", "pdf", "jsonl")
_SUFFIXES = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".text": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".ndjson": "jsonl",
}


@dataclass(frozen=True)
class Section:
    heading: str
    text: str


@dataclass(frozen=True)
class EntityHint:
    """An entity a source states outright (MedQuAD focus, UMLS CUI, semantic type)."""

    name: str
    kind: str = "focus"
    cui: str | None = None
    semantic_type: str | None = None


@dataclass(frozen=True)
class SourceDocument:
    key: str
    title: str
    url: str | None
    fmt: str
    sections: tuple[Section, ...]
    entities: tuple[EntityHint, ...] = field(default=())

    @property
    def content_hash(self) -> str:
        payload = json.dumps(
            {
                "title": self.title,
                "url": self.url,
                "sections": [asdict(s) for s in self.sections],
                "entities": [asdict(e) for e in self.entities],
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> SourceDocument:
        data = json.loads(raw)
        return cls(
            key=data["key"],
            title=data["title"],
            url=data["url"],
            fmt=data["fmt"],
            sections=tuple(Section(**s) for s in data["sections"]),
            entities=tuple(EntityHint(**e) for e in data["entities"]),
        )


def detect_format(path: Path) -> str:
    name = path.name.lower()
    for suffix, fmt in _SUFFIXES.items():
        if name.endswith(suffix):
            return fmt
    raise InputError(f"unsupported knowledge file type: {path.name} (use one of {', '.join(FORMATS)})")


def expand_paths(paths: list[Path]) -> list[Path]:
    """Files named directly, plus supported files under named folders, in a stable order."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                if child.is_file() and any(child.name.lower().endswith(s) for s in _SUFFIXES):
                    found.append(child)
        elif path.is_file():
            found.append(path)
        else:
            raise InputError(f"knowledge source not found: {path}")
    return found


def read_documents(path: Path, *, question_headings: bool = False) -> list[SourceDocument]:
    """All documents in one source file; a malformed file raises :class:`InputError`."""
    fmt = detect_format(path)
    source = str(path.resolve())
    try:
        if fmt == "jsonl":
            return list(_read_jsonl(path, source, question_headings))
        if fmt == "pdf":
            return [_read_pdf(path, source)]
        raw = path.read_text(encoding="utf-8", errors="replace")
    except OSError as error:
        raise InputError(f"cannot read knowledge file {path}: {error.strerror}") from None
    if fmt == "markdown":
        title, sections = _markdown_sections(raw)
    elif fmt == "html":
        title, sections = _html_sections(raw)
    else:
        title, sections = "", (Section("", raw),)
    return [_document(source, title or path.stem, None, fmt, sections)]


def _document(
    key: str, title: str, url: str | None, fmt: str, sections: tuple[Section, ...], entities: tuple[EntityHint, ...] = ()
) -> SourceDocument:
    kept = tuple(Section(_clean(s.heading), _clean(s.text)) for s in sections)
    return SourceDocument(key, _clean(title), url, fmt, tuple(s for s in kept if s.text), entities)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _markdown_sections(raw: str) -> tuple[str, tuple[Section, ...]]:
    """Split on ATX headings; the first level-1 heading is the title, headings nest into paths."""
    title = ""
    path: list[str] = []
    sections: list[Section] = []
    lines: list[str] = []

    def flush() -> None:
        text = _strip_markdown("\n".join(lines))
        if text.strip():
            sections.append(Section(" > ".join(path), text))
        lines.clear()

    for line in raw.splitlines():
        match = _MD_HEADING.match(line)
        if not match:
            lines.append(line)
            continue
        flush()
        level, heading = len(match.group(1)), _strip_markdown(match.group(2)).strip()
        if level == 1 and not title:
            title = heading
            path = []
            continue
        path = [*path[: max(level - 2, 0)], heading]
    flush()
    return title, tuple(sections)


def _strip_markdown(text: str) -> str:
    text = re.sub(r"!\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"`{1,3}", "", text)
    text = re.sub(r"(\*\*|__|\*|_)(\S.*?\S|\S)\1", r"\2", text)
    return re.sub(r"^\s*(?:[-*+]|\d+\.|>)\s+", "- ", text, flags=re.MULTILINE)


class _HtmlSections(HTMLParser):
    """Collects visible text, splitting sections at h1-h6 and skipping scripts and styles."""

    _SKIP = frozenset({"script", "style", "noscript", "template", "head"})
    _BLOCK = frozenset({"p", "div", "li", "br", "tr", "section", "article", "table", "ul", "ol"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.title = ""
        self.sections: list[Section] = []
        self._skip_depth = 0
        self._in_title = False
        self._heading: list[str] | None = None
        self._current_heading = ""
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip_depth += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self._heading = []
        elif tag in self._BLOCK:
            self._text.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skip_depth = max(self._skip_depth - 1, 0)
        elif re.fullmatch(r"h[1-6]", tag) and self._heading is not None:
            heading = _clean("".join(self._heading))
            if tag == "h1" and not self.title:
                self.title = heading
            else:
                self._current_heading = heading
            self._heading = None

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title = self.title or _clean(data)
        elif self._skip_depth:
            return
        elif self._heading is not None:
            self._heading.append(data)
        else:
            self._text.append(data)

    def _flush(self) -> None:
        text = "".join(self._text)
        if text.strip():
            self.sections.append(Section(self._current_heading, text))
        self._text = []

    def close(self) -> None:
        super().close()
        self._flush()


def _html_sections(raw: str) -> tuple[str, tuple[Section, ...]]:
    parser = _HtmlSections()
    parser.feed(raw)
    parser.close()
    return html.unescape(parser.title), tuple(parser.sections)


def _read_pdf(path: Path, source: str) -> SourceDocument:
    """Each page is a section so citations can say where in the PDF a passage came from."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(path)
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError) as error:
        raise InputError(f"cannot read PDF {path.name}: {type(error).__name__}") from None
    sections = tuple(Section(f"page {n}", text) for n, text in enumerate(pages, start=1))
    return _document(source, str(meta_title) or path.stem, None, "pdf", sections)


def _jsonl_lines(path: Path) -> Iterator[tuple[int, dict]]:
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    raise InputError(f"{path.name} line {number}: not valid JSON") from None
                if not isinstance(record, dict):
                    raise InputError(f"{path.name} line {number}: expected a JSON object")
                yield number, record
    except (OSError, EOFError) as error:
        raise InputError(f"cannot read {path.name}: {type(error).__name__}") from None


def _read_jsonl(path: Path, source: str, question_headings: bool) -> Iterator[SourceDocument]:
    """MedQuAD pairs grouped into their source documents, or one generic {title,text,url} record each.

    MedQuAD ids are ``<document>-<pair>`` (or ``<document>_<part>-<pair>``); the pairs of one web page form one document, so
    "the answer's own document" means the page, as in the corpus itself.
    """
    grouped: dict[str, list[dict]] = {}
    for number, record in _jsonl_lines(path):
        if "answer" in record and ("focus" in record or "question" in record):
            grouped.setdefault(f"{source}#{medquad_document_id(record, number)}", []).append(record)
        elif isinstance(record.get("text"), str):
            key = f"{source}#{record.get('id', number)}"
            title = str(record.get("title") or record.get("id") or f"{path.stem} {number}")
            yield _document(key, title, record.get("url"), "jsonl", (Section("", record["text"]),))
        else:
            raise InputError(f"{path.name} line {number}: needs question/answer/focus or title/text fields")
    for key, pairs in grouped.items():
        yield _medquad_document(key, pairs, question_headings)


def medquad_document_id(record: dict, line_number: int = 0) -> str:
    """``<source>/<document>`` for a MedQuAD pair: the web page the pair was taken from."""
    return f"{record.get('source', '')}/{re.split(r'[_-]', str(record.get('id', line_number)))[0]}"


def _medquad_document(key: str, pairs: list[dict], question_headings: bool) -> SourceDocument:
    first = pairs[0]
    focus = str(first.get("focus") or first.get("question") or "")
    sections = tuple(
        Section(
            str(pair.get("question") or "") if question_headings else str(pair.get("qtype") or ""),
            str(pair.get("answer") or ""),
        )
        for pair in pairs
    )
    hints: dict[str, EntityHint] = {}
    for pair in pairs:
        name = str(pair.get("focus") or "").strip()
        if name and name not in hints:
            hints[name] = EntityHint(
                name=name,
                kind="focus",
                cui=_optional(pair, "cui", "umls_cui"),
                semantic_type=_optional(pair, "semantic_type", "semantic_group", "semtype"),
            )
    return _document(key, focus, first.get("url"), "jsonl", sections, tuple(hints.values()))


def _optional(record: dict, *names: str) -> str | None:
    for name in names:
        value = record.get(name)
        if value:
            return str(value)
    return None
