"""The dataset stage keeps every evaluation item out of training, and says how many it dropped."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

from appliance.config import load_settings
from appliance.dataset.contamination import NGRAM_WORDS, ContaminationIndex
from appliance.dataset.stage import build_dataset_stage
from appliance.evaluate.catalog import EvalText, evaluation_texts
from appliance.evaluate.config import EvalConfig
from appliance.evaluate.medquad import shipped_heldout
from appliance.evaluate.multiple_choice import load_mmlu
from appliance.evaluate.pubmedqa import load_test_split

REPO = Path(__file__).resolve().parents[3]
MEDQUAD_SAMPLE = REPO / "appliance" / "data" / "medquad-sample.jsonl"
ANSWER = (
    "Insulin pumps deliver rapid acting insulin through a thin tube under the skin all day long, "
    "and the person adds a larger dose before each meal after checking the blood glucose level."
)


def _index() -> ContaminationIndex:
    return ContaminationIndex.build([EvalText("held", "How does an insulin pump work ?", (ANSWER,))])


def test_question_match_and_long_ngram_overlap_are_found_short_phrases_are_not() -> None:
    index = _index()
    assert index.match(["  how does an INSULIN pump work?"], "anything") == "held"
    words = ANSWER.split()
    copied = "A reworded opening. " + " ".join(words[5 : 5 + NGRAM_WORDS]) + " and then something else."
    assert index.match([], copied) == "held"
    one_short = "A reworded opening. " + " ".join(words[5 : 5 + NGRAM_WORDS - 1]) + " and then something else."
    assert index.match([], one_short) is None
    assert index.match(["How do insulin pumps work in children?"], "They deliver insulin under the skin.") is None


def test_shipped_evaluation_items_are_all_indexed() -> None:
    texts = evaluation_texts(EvalConfig())
    counts = ContaminationIndex.build(texts).items
    assert counts["mmlu_medical"] == len(load_mmlu()) == 1099
    assert counts["pubmedqa"] >= len(load_test_split(None, 100)) == 500
    assert counts["medquad"] == 30
    assert sum(counts.values()) >= 1600


def test_configured_hospital_files_are_indexed(tmp_path: Path) -> None:
    medmcqa = tmp_path / "medmcqa-dev.jsonl"
    rows = [{"question": f"Which nerve supplies muscle {n}?", "opa": "Ulnar", "opb": "Radial", "opc": "Median",
             "opd": "Axillary", "cop": n % 4 + 1} for n in range(4)]
    medmcqa.write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = ContaminationIndex.build(evaluation_texts(EvalConfig(medmcqa_files=[medmcqa])))
    assert index.items["mc_medmcqa-dev"] == 4
    assert index.match(["Which nerve supplies muscle 2?"], "") == "mc_medmcqa-dev"


def test_shipped_sample_is_clean_and_the_build_drops_planted_eval_items(tmp_path: Path) -> None:
    index = ContaminationIndex.build(evaluation_texts(EvalConfig()))
    sample = [json.loads(line) for line in MEDQUAD_SAMPLE.read_text().splitlines()]
    assert [r["id"] for r in sample if index.match([r["question"]], r["question"] + "\n" + r["answer"])] == []

    with gzip.open(shipped_heldout(), "rt") as handle:
        heldout = [json.loads(line) for line in handle][:3]
    mmlu = load_mmlu()[0]
    abstract = load_test_split(None, 100_000)[0]
    planted = [
        {"question": heldout[0]["question"], "answer": "A different answer entirely, written for this test."},
        {"question": "Tell me about this condition.", "answer": heldout[1]["answer"]},
        {"question": mmlu.question, "answer": mmlu.options[mmlu.answer]},
        {"question": "Summarise this abstract.", "answer": abstract.context[:600]},
    ]
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(r) + "\n" for r in [*sample[:40], *planted]))
    settings = load_settings(home=tmp_path / "home", dataset={"phi_gate": False, "recipes": {"replay": 0.0}})
    result = build_dataset_stage(settings, deid_dir=None, qa_files=[qa], workdir=tmp_path / "work")
    contamination = json.loads(result.path("dataset.json").read_text())["contamination"]
    assert contamination["dropped"] == 4
    assert contamination["by_source"] == {"qa:qa.jsonl": 4}
    assert contamination["by_benchmark"] == {"medquad": 2, "mmlu_medical": 1, "pubmedqa": 1}
    assert result.manifest.details["contamination"]["dropped"] == 4
    built = result.path("train.jsonl").read_text() + result.path("validation.jsonl").read_text()
    assert heldout[0]["question"] not in built and mmlu.question not in built
    assert result.manifest.details["counts"]["train"] + result.manifest.details["counts"]["validation"] == 40


def test_check_is_linear_and_quick_on_the_full_index() -> None:
    index = ContaminationIndex.build(evaluation_texts(EvalConfig()))
    text = " ".join(f"word{n % 977}" for n in range(20_000))
    started = time.perf_counter()
    assert index.match([], text) is None
    assert time.perf_counter() - started < 1.0
