"""Intervals, paired tests, multiple-choice loaders, stratification and collapse flags, checked by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from appliance.evaluate import stats
from appliance.evaluate.multiple_choice import (
    MMLU_SUBJECTS,
    baselines,
    collapse,
    load_medmcqa,
    load_medqa,
    load_mmlu,
    stratified,
)
from appliance.evaluate.report import flags, interval_chart
from deid.errors import InputError


def test_wilson_matches_the_textbook_values() -> None:
    low, high = stats.wilson(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    assert stats.wilson(0, 20)[0] == 0.0 and stats.wilson(0, 20)[1] == pytest.approx(0.1611, abs=1e-4)
    assert stats.wilson(20, 20)[1] == 1.0
    assert stats.wilson(0, 0) == (0.0, 1.0)


def test_mcnemar_exact_counts_only_discordant_items() -> None:
    # 10 items only the second model got right, 0 the other way: p = 2 * 0.5**10
    first, second = [False] * 10 + [True] * 5, [True] * 15
    result = stats.mcnemar_exact(first, second)
    assert (result["only_first"], result["only_second"]) == (0, 10)
    assert result["p_value"] == pytest.approx(2 * 0.5**10, abs=1e-6)
    balanced = stats.mcnemar_exact([True, False] * 5, [False, True] * 5)
    assert balanced["p_value"] == 1.0
    assert stats.mcnemar_exact([True] * 4, [True] * 4)["p_value"] == 1.0
    with pytest.raises(ValueError):
        stats.mcnemar_exact([True], [True, False])


def test_bootstrap_intervals_cover_the_estimate_and_shrink_with_more_items() -> None:
    values = [0.1, 0.4, 0.35, 0.8, 0.2, 0.55, 0.3, 0.45]
    low, high = stats.bootstrap_mean(values)
    assert low < sum(values) / len(values) < high
    wide = high - low
    low, high = stats.bootstrap_mean(values * 16)
    assert high - low < wide / 2
    nll, tokens = [10.0, 20.0, 15.0, 30.0], [10, 10, 10, 10]
    low, high = stats.bootstrap_perplexity(nll, tokens)
    assert low <= math.exp(sum(nll) / sum(tokens)) <= high and low >= math.exp(1.0) - 1e-9


def test_paired_bootstrap_sees_a_real_shift_and_not_noise() -> None:
    base = [0.2 + 0.01 * (n % 7) for n in range(40)]
    shifted = stats.paired_bootstrap(base, [v + 0.1 for v in base])
    assert shifted["difference"] == pytest.approx(0.1) and shifted["p_value"] < 0.01
    assert shifted["ci_low"] == pytest.approx(0.1) and shifted["ci_high"] == pytest.approx(0.1)
    same = stats.paired_bootstrap(base, list(base))
    assert same["difference"] == 0.0 and same["p_value"] == 1.0
    noisy = stats.paired_bootstrap(base, [v + (0.05 if n % 2 else -0.05) for n, v in enumerate(base)])
    assert noisy["p_value"] > 0.5 and noisy["ci_low"] < 0 < noisy["ci_high"]


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_medmcqa_answer_numbering_is_detected_or_refused(tmp_path: Path) -> None:
    options = {"opa": "Ulnar", "opb": "Radial", "opc": "Median", "opd": "Axillary"}
    one_based = _write(tmp_path / "one.jsonl", [{"question": f"q{n}", **options, "cop": c} for n, c in enumerate([1, 4, 2])])
    assert [item.answer for item in load_medmcqa(one_based)] == ["A", "D", "B"]
    zero_based = _write(tmp_path / "zero.jsonl", [{"question": f"q{n}", **options, "cop": c} for n, c in enumerate([0, 3, 1])])
    assert [item.answer for item in load_medmcqa(zero_based)] == ["A", "D", "B"]
    unclear = _write(tmp_path / "unclear.jsonl", [{"question": "q", **options, "cop": 2}])
    with pytest.raises(InputError, match="counts from 0 or from 1"):
        load_medmcqa(unclear)
    broken = _write(tmp_path / "broken.jsonl", [{"question": "q", "opa": "x", "cop": 1}])
    with pytest.raises(InputError, match="line 1 is not in the MedMCQA layout"):
        load_medmcqa(broken)


def test_medqa_rows_are_checked(tmp_path: Path) -> None:
    good = _write(tmp_path / "medqa.jsonl", [
        {"question": "Which?", "options": {"A": "x", "B": "y", "C": "z", "D": "w", "E": "v"}, "answer_idx": "E"}
    ])
    item = load_medqa(good)[0]
    assert item.answer == "E" and len(item.options) == 5 and baselines([item])["chance"] == 0.2
    wrong = _write(tmp_path / "wrong.jsonl", [{"question": "Which?", "options": {"A": "x", "B": "y"}, "answer_idx": "C"}])
    with pytest.raises(InputError, match="line 1 names answer 'C'"):
        load_medqa(wrong)
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(InputError, match="line 1 is not JSON"):
        load_medqa(tmp_path / "bad.jsonl")


def test_shipped_mmlu_and_stratified_subsets() -> None:
    items = load_mmlu()
    assert len(items) == 1099 and {item.subject for item in items} == set(MMLU_SUBJECTS)
    assert all(set(item.options) == set("ABCD") and item.answer in "ABCD" for item in items)
    chosen = stratified(items, 102)
    counts = {subject: sum(1 for item in chosen if item.subject == subject) for subject in MMLU_SUBJECTS}
    assert counts == dict.fromkeys(MMLU_SUBJECTS, 17)
    smaller = [item.question for item in stratified(items, 60)]
    assert set(smaller) <= {item.question for item in chosen} and len(stratified(items, None)) == 1099
    assert baselines(items)["majority"] == pytest.approx(357 / 1099, abs=1e-4)


def test_a_model_that_always_answers_the_same_is_flagged() -> None:
    assert collapse(["no"] * 9 + ["yes"]) == {"most_given": "no", "most_given_share": 0.9, "collapsed": True}
    assert collapse(["A", "B", "C", "A"])["collapsed"] is False
    row = {"metric": "accuracy", "value": 0.3, "ci_low": 0.2, "ci_high": 0.4, "chance": 0.3333, "majority": 0.55,
           **collapse(["no"] * 9 + ["yes"])}
    text = flags(row)
    assert "COLLAPSED" in text and "below guessing" in text
    chart = interval_chart("PubMedQA", {"base": {**row, "higher_is_better": True, "questions": 10}}, 0.55)
    assert chart.startswith("<svg") and "[0.2, 0.4]" in chart and "best guess 0.55" in chart


def test_paired_comparison_calls_a_real_change_and_only_that() -> None:
    from appliance.evaluate.stage import Scores, compare

    base, tuned = Scores(), Scores()
    base.accuracy("mmlu_medical", "mmlu_medical_accuracy", {"correct": [False] * 30 + [True] * 10}, 1.0)
    tuned.accuracy("mmlu_medical", "mmlu_medical_accuracy", {"correct": [True] * 40}, 1.0)
    base.mean("medquad_rouge_l", "medquad_rouge_l", [0.2, 0.3, 0.25, 0.1, 0.2, 0.3], 1.0)
    tuned.mean("medquad_rouge_l", "medquad_rouge_l", [0.2, 0.3, 0.25, 0.1, 0.2, 0.3], 1.0)
    base.perplexity("heldout_perplexity", "heldout_perplexity", [30.0] * 6, [10] * 6, 1.0)
    tuned.perplexity("heldout_perplexity", "heldout_perplexity", [20.0] * 6, [10] * 6, 1.0)
    rows = {row["benchmark"]: row for row in compare(base, tuned)}
    assert rows["mmlu_medical"]["verdict"] == "better" and rows["mmlu_medical"]["difference"] == 0.75
    assert rows["medquad_rouge_l"]["verdict"] == "no significant change"
    assert rows["heldout_perplexity"]["verdict"] == "better" and rows["heldout_perplexity"]["difference"] == -1.0
    assert tuned.detail["mmlu_medical"]["ci_low"] > 0.9 and base.flat["mmlu_medical_accuracy"] == 0.25


def test_the_report_repeats_the_contamination_check_on_the_training_set(tmp_path: Path) -> None:
    from appliance.evaluate.config import EvalConfig
    from appliance.evaluate.stage import training_contamination

    mmlu = load_mmlu()[5]
    train = _write(tmp_path / "train.jsonl", [
        {"recipe": "qa", "kind": "chat", "messages": [{"role": "user", "content": mmlu.question},
                                                       {"role": "assistant", "content": "an answer"}]},
        {"recipe": "pretrain", "kind": "text", "text": "Follow-up visit, blood pressure improved on amlodipine."},
    ])
    check = training_contamination(EvalConfig(), [train])
    assert (check["examples"], check["contaminated"], check["by_benchmark"]) == (2, 1, {"mmlu_medical": 1})
    assert training_contamination(EvalConfig(), [])["checked"] is False
    (tmp_path / "bad.jsonl").write_text("[1, 2]\n")
    with pytest.raises(InputError, match="line 1 is not a training example"):
        training_contamination(EvalConfig(), [tmp_path / "bad.jsonl"])
