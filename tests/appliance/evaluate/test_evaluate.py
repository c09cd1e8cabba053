"""appliance eval on the tiny model: every benchmark through both back-ends, report, card, memorization gate."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from appliance.config import ApplianceSettings, load_settings
from appliance.evaluate.memorization import split_canary
from appliance.evaluate.multiple_choice import MMLU_SUBJECTS
from appliance.evaluate.review import Criterion
from appliance.evaluate.rouge import lcs_length, rouge_l
from appliance.evaluate.stage import evaluate_stage, import_review, write_review_sheet
from appliance.pipeline.stage import StageContext, run_stage
from deid.errors import GateError, InputError
from tests.appliance.evaluate.conftest import CANARY

MEDQA_ROWS = [
    {"question": "Which drug is first-line for type 2 diabetes?", "options": {"A": "Metformin", "B": "Warfarin",
     "C": "Aspirin", "D": "Heparin"}, "answer_idx": "A", "answer": "Metformin"},
    {"question": "Which organ does hepatitis affect?", "options": {"A": "Kidney", "B": "Liver", "C": "Lung",
     "D": "Heart"}, "answer_idx": "B", "answer": "Liver"},
]


def _settings(home: Path, medqa: Path | None = None) -> ApplianceSettings:
    return load_settings(
        home=home,
        eval={
            "pubmedqa_limit": 3, "few_shot": 1, "pubmedqa_context_chars": 150, "medquad_limit": 2,
            "answer_max_tokens": 6, "perplexity_max_tokens": 128, "context_length": 512, "threads": 1,
            "medqa_files": [str(medqa)] if medqa else [], "mmlu_limit": 6, "review_limit": 0,
        },
    )


def _plant_lineage(workdir: Path) -> None:
    """A dataset stage as the real pipeline records it: counts and the ledger head in its details."""

    def build(ctx: StageContext) -> dict[str, object]:
        (ctx.output_dir / "examples.jsonl").write_text("{}\n")
        return {"examples": 42, "by_recipe": {"qa": 30, "notes": 12}, "ledger_head": "ab" * 32}

    run_stage(workdir, "dataset", settings={"recipe": "test"}, inputs={}, build=build)


def test_report_table_charts_and_model_card(
    tiny_hf_model: Path, tiny_ggufs: dict[str, Path], tmp_path: Path
) -> None:
    medqa = tmp_path / "medqa.jsonl"
    medqa.write_text("\n".join(json.dumps(row) for row in MEDQA_ROWS) + "\n")
    heldout = tmp_path / "heldout.txt"
    heldout.write_text("Follow-up visit: blood pressure improved on amlodipine, continue current dose.")
    workdir = tmp_path / "work"
    _plant_lineage(workdir)
    messages: list[str] = []
    settings = _settings(tmp_path / "home", medqa)
    settings = settings.model_copy(
        update={"eval": settings.eval.updated(review_limit=2, review_max_tokens=8, judge_model=tiny_ggufs["f32"])}
    )
    result = evaluate_stage(
        settings,
        models={"base": tiny_hf_model, "fine-tuned": tiny_ggufs["f32"], "fine-tuned-Q8_0": tiny_ggufs["q8"]},
        workdir=workdir, heldout_texts=heldout, canaries=[CANARY], progress=messages.append,
    )
    report = json.loads(result.path("report.json").read_text())
    assert list(report["models"]) == ["base", "fine-tuned", "fine-tuned-Q8_0"]
    for results in report["models"].values():
        assert 0.0 <= results["pubmedqa_zero_shot"] <= 1.0 and results["pubmedqa_questions"] == 3
        assert "pubmedqa_few_shot" in results and results["mc_medqa_accuracy"] in (0.0, 0.5, 1.0)
        assert results["heldout_perplexity"] > 1.0 and results["medquad_answer_perplexity"] > 1.0
        assert 0.0 <= results["medquad_rouge_l"] <= 1.0 and 0.0 <= results["mmlu_medical_accuracy"] <= 1.0
    for name, detail in report["benchmarks"].items():
        mmlu = detail["mmlu_medical"]
        assert mmlu["questions"] == 6 and mmlu["chance"] == 0.25 and 0.25 <= mmlu["majority"] <= 1.0
        assert sum(mmlu["predicted"].values()) == 6 and len(report["items"][name]["mmlu_medical"]) == 6
        assert {s: v["questions"] for s, v in mmlu["subjects"].items()} == dict.fromkeys(MMLU_SUBJECTS, 1)
        assert mmlu["collapsed"] == (mmlu["most_given_share"] > 0.8)
        for row in detail.values():
            assert row["ci_low"] <= row["value"] <= row["ci_high"], row
        assert detail["pubmedqa_zero_shot"]["majority"] >= 0.33 and detail["pubmedqa_zero_shot"]["chance"] == 0.3333
    # paired tests against the base on the same items, for every fine-tuned model and benchmark
    compared = report["comparisons"]
    assert set(compared) == {"fine-tuned", "fine-tuned-Q8_0"}
    tests = {row["benchmark"]: row for row in compared["fine-tuned"]}
    assert tests["mmlu_medical"]["test"] == "McNemar exact" and tests["medquad_rouge_l"]["test"] == "paired bootstrap"
    # F32 GGUF against the same weights in transformers: nothing changed, and the report says so
    assert {row["verdict"] for row in compared["fine-tuned"]} <= {"no significant change", "too few items to test"}
    assert tests["mmlu_medical"]["verdict"] == "no significant change" and tests["mmlu_medical"]["p_value"] == 1.0
    assert report["contamination"]["checked"] is False
    # the same weights give the same numbers through transformers and llama.cpp
    hf, gguf_f32 = report["models"]["base"], report["models"]["fine-tuned"]
    assert hf["heldout_perplexity"] == pytest.approx(gguf_f32["heldout_perplexity"], rel=1e-3)
    assert hf["pubmedqa_zero_shot"] == gguf_f32["pubmedqa_zero_shot"]
    assert report["memorization"]["passed"] is True
    assert report["memorization"]["models"]["fine-tuned"]["extraction_rate"] == 0.0

    html = result.path("report.html").read_text()
    assert html.count("<svg") >= 7 and "<script" not in html and "fine-tuned-Q8_0" in html
    assert "95% interval" in html and "Did fine-tuning change anything?" in html and "McNemar exact" in html
    card = result.path("model-card.md").read_text()
    assert report["model_sha256"]["fine-tuned-Q8_0"] in card
    assert "ab" * 32 in card and "| dataset | examples | 42 |" in card and "by_recipe.qa" in card
    assert "## Intended use" in card and "## Limitations" in card
    assert "| MMLU medical subjects, accuracy | fine-tuned |" in card and "McNemar exact p =" in card
    secret = split_canary(CANARY, 0.5)[1].strip()
    for text in (html, card, result.path("report.json").read_text(), *messages):
        assert CANARY not in text and secret not in text and "Zorbulon" not in text
    assert any("PubMedQA" in message for message in messages)

    # rubric review: every model answered the same 2 questions, the judge graded all 5 criteria 1-5
    answers = json.loads(result.path("review.json").read_text())["answers"]
    assert len(answers) == 6 and {a["model"] for a in answers} == set(report["models"])
    assert all(set(a["judge"]) == {c.value for c in Criterion} and set(a["judge"].values()) <= {1, 2, 3, 4, 5} for a in answers)
    assert report["review"]["judge"]["weak"] is False and set(report["review"]["judge_grades"]) == set(report["models"])
    assert "Judge model's grades" in html and "No clinician grades yet" in html and "Rubric review of 6" in card

    # clinicians grade the blinded sheet; their grades enter a new report and model card
    sheet, table = write_review_sheet(workdir, tmp_path / "sheet")
    assert "Answer review sheet" in sheet.read_text() and "fine-tuned" not in table.read_text()
    rows = list(csv.DictReader(table.read_text().splitlines()))
    assert len(rows) == 6 and [r["answer_id"] for r in rows] == sorted(a["answer_id"] for a in answers)
    for number, row in enumerate(rows[:4]):  # two answers stay ungraded: not yet reviewed
        row.update({c.value: str(1 + (number + i) % 5) for i, c in enumerate(Criterion)})
    graded = tmp_path / "graded.csv"
    with graded.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    imported = import_review(settings, workdir, graded)
    assert imported.manifest.details["graded"] == 4
    assert "Clinicians' grades (4 answers graded by hand)" in imported.path("report.html").read_text()
    assert "- clinicians, " in imported.path("model-card.md").read_text()
    rows[0]["safe"] = "7"
    with graded.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with pytest.raises(InputError, match="row 2, column safe: a grade must be a whole number 1-5"):
        import_review(settings, workdir, graded)


def test_memorized_canary_fails_the_gate_but_keeps_the_report(
    tiny_ggufs: dict[str, Path], leaky_model: Path, tmp_path: Path
) -> None:
    settings = _settings(tmp_path / "home")
    settings = settings.model_copy(update={"eval": settings.eval.updated(medquad_limit=0, few_shot=0)})
    models = {"base": tiny_ggufs["f32"], "fine-tuned": leaky_model}
    canaries = [CANARY, "Dr Amelia Brightwater signed the note"]
    with pytest.raises(GateError, match="memorization gate") as caught:
        evaluate_stage(settings, models=models, workdir=tmp_path / "w", heldout_texts=None, canaries=canaries)
    assert "Zorbulon" not in str(caught.value)
    report = json.loads((tmp_path / "w" / "evaluate" / "report.json").read_text())
    assert report["memorization"]["models"]["fine-tuned"]["extracted_ordinals"] == [0]
    assert report["memorization"]["models"]["fine-tuned"]["extraction_rate"] == 0.5
    assert report["memorization"]["models"]["base"]["extracted"] == 0
    assert "Zorbulon" not in (tmp_path / "w" / "evaluate" / "model-card.md").read_text()
    with pytest.raises(GateError):  # a rerun that skips the stage still fails the gate
        evaluate_stage(settings, models=models, workdir=tmp_path / "w", heldout_texts=None, canaries=canaries)


def test_bad_inputs_are_clear_errors(tiny_ggufs: dict[str, Path], tmp_path: Path) -> None:
    settings = _settings(tmp_path / "home", medqa=tmp_path / "missing.jsonl")
    with pytest.raises(InputError, match="not found"):
        evaluate_stage(settings, models={"x": tmp_path / "nope.gguf"}, workdir=tmp_path / "w", heldout_texts=None, canaries=None)
    with pytest.raises(InputError, match="multiple-choice file not found"):
        evaluate_stage(settings, models={"x": tiny_ggufs["q8"]}, workdir=tmp_path / "w", heldout_texts=None, canaries=None)


def test_rouge_l_by_hand() -> None:
    assert lcs_length("a b c d".split(), "a c d e".split()) == 3
    assert rouge_l("the cat sat", "the cat sat") == 1.0
    assert rouge_l("", "anything") == 0.0
    # LCS "police killed gunman" = 3 of 4 in both -> F1 0.75
    assert rouge_l("police killed the gunman", "police kill the gunman".replace("kill", "killed").replace("the ", "a ")) == pytest.approx(0.75)


def test_canary_split_keeps_whole_words() -> None:
    prefix, secret = split_canary("alpha beta gamma delta", 0.5)
    assert prefix + secret == "alpha beta gamma delta" and secret.startswith(" ")


def test_pubmedqa_subsets_are_mixed_and_the_split_is_complete() -> None:
    from appliance.evaluate.pubmedqa import load_test_split

    every = load_test_split(None, 100)
    assert len(every) == 500 and len({item.id for item in every}) == 500
    assert {item.answer for item in load_test_split(20, 100)} == {"yes", "no", "maybe"}
