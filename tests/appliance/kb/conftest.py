"""A small knowledge base of every supported format, built once per session.

The embedding model loads once (session scope) and the MedQuAD slice is a dozen pairs from the
shipped sample, so the whole area runs in well under a minute on two cores.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from appliance.kb.base import KnowledgeBase
from appliance.kb.config import KnowledgeConfig
from appliance.kb.embedding import Embedder

REPO_ROOT = Path(__file__).resolve().parents[3]
MEDQUAD_SAMPLE = REPO_ROOT / "appliance" / "data" / "medquad-sample.jsonl"
MEDQUAD_PAIRS = 12

MARKDOWN = """# Sepsis Bundle Protocol

Approved by the Antimicrobial Stewardship Committee.

## First hour

Measure serum lactate and obtain blood cultures before giving broad-spectrum antibiotics.
Start 30 mL/kg crystalloid for hypotension or lactate of 4 mmol/L or more.

## Reassessment

Reassess volume status and tissue perfusion after the initial fluid bolus. Start vasopressors
(norepinephrine first) if mean arterial pressure stays below 65 mmHg.
"""

TEXT = (
    "Warfarin dosing guidance. The target INR for most indications is 2.0 to 3.0. "
    "Check the INR within five days of any dose change and interacting antibiotic course. "
    "Vitamin K reverses over-anticoagulation when the INR is above 10 or bleeding occurs."
)

HTML = """<html><head><title>Hand Hygiene Policy</title><style>.x{color:red}</style>
<script>var tracking = "should never be indexed";</script></head>
<body><h1>Hand Hygiene Policy</h1><h2>When to clean hands</h2>
<p>Use alcohol-based hand rub before and after every patient contact.</p>
<p>Wash with soap and water after caring for patients with Clostridioides difficile diarrhoea.</p>
</body></html>"""

PDF_TEXT = "Penicillin allergy delabelling: low-risk patients may receive a direct oral amoxicillin challenge."

GENERIC = [
    {
        "id": "form-7",
        "title": "Formulary: Metformin",
        "url": "https://intranet.example/formulary/metformin",
        "text": "Metformin is first-line therapy for type 2 diabetes. Withhold it when eGFR falls below 30.",
    }
]


def write_minimal_pdf(path: Path, text: str) -> None:
    """A one-page PDF whose content stream draws ``text`` in Helvetica (no PDF library writes text)."""
    stream = f"BT /F1 10 Tf 40 700 Td ({text}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    body = b"%PDF-1.4\n"
    offsets = []
    for number, content in enumerate(objects, start=1):
        offsets.append(len(body))
        body += b"%d 0 obj\n" % number + content + b"\nendobj\n"
    xref = len(body)
    body += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    body += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    body += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    path.write_bytes(body)


def write_sources(directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "markdown": directory / "sepsis.md",
        "text": directory / "warfarin.txt",
        "html": directory / "hand-hygiene.html",
        "pdf": directory / "penicillin.pdf",
        "generic": directory / "formulary.jsonl",
        "medquad": directory / "medquad.jsonl",
    }
    paths["markdown"].write_text(MARKDOWN, encoding="utf-8")
    paths["text"].write_text(TEXT, encoding="utf-8")
    paths["html"].write_text(HTML, encoding="utf-8")
    write_minimal_pdf(paths["pdf"], PDF_TEXT)
    paths["generic"].write_text("".join(json.dumps(r) + "\n" for r in GENERIC), encoding="utf-8")
    lines = MEDQUAD_SAMPLE.read_text(encoding="utf-8").splitlines()[:MEDQUAD_PAIRS]
    paths["medquad"].write_text("\n".join(lines) + "\n", encoding="utf-8")
    return paths


def medquad_pairs() -> list[dict]:
    return [json.loads(line) for line in MEDQUAD_SAMPLE.read_text(encoding="utf-8").splitlines()[:MEDQUAD_PAIRS]]


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    config = KnowledgeConfig()
    return Embedder(max_tokens=config.embed_max_tokens, int8=config.embed_int8)


@pytest.fixture(scope="session")
def built_kb(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> tuple[Path, dict[str, Path]]:
    """A knowledge base directory built from every format, never modified by tests (they copy it)."""
    root = tmp_path_factory.mktemp("kb")
    sources = write_sources(root / "sources")
    knowledge = KnowledgeBase.open(root / "kb", KnowledgeConfig(), create=True, embedder=embedder)
    assert knowledge is not None
    knowledge.add(list(sources.values()))
    knowledge.close()
    return root / "kb", sources


@pytest.fixture()
def kb_copy(tmp_path: Path, built_kb: tuple[Path, dict[str, Path]], embedder: Embedder) -> Iterator[KnowledgeBase]:
    """A private, writable copy of the session knowledge base."""
    kb_dir, _ = built_kb
    shutil.copytree(kb_dir, tmp_path / "kb")
    knowledge = KnowledgeBase.open(tmp_path / "kb", KnowledgeConfig(), embedder=embedder)
    assert knowledge is not None
    yield knowledge
    knowledge.close()
