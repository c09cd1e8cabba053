"""DPO on MedQuAD preference pairs: does the policy move toward the chosen answers on pairs it never trained on?

Pairs are built from the shipped MedQuAD sample the way clinicians' feedback would make
them: the prompt is a question, ``chosen`` its reference answer, ``rejected`` either the
reference answer of another question of similar length (a wrong answer) or a short
refusal (an unhelpful one), alternately. Then ``appliance train --method dpo`` runs on the
embedded model in a fresh work directory (from the base, no SFT adapter) and the stage's
held-out figures are printed from its manifest.

    .venv/bin/python -m bench.dpo_medquad [--pairs 48] [--steps 12] [--workdir DIR]

On two CPU cores shared with other jobs (load about 8) 48 pairs and 12 steps took 29
minutes: a third of it the reference pass over every pair, most of the rest the steps.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
QA_FILE = REPO / "appliance" / "data" / "medquad-sample.jsonl"
REFUSALS = [
    "I am not able to answer that.",
    "I don't know. Please search the internet.",
    "That is not something I can help with.",
    "Nobody really knows; it does not matter much.",
]
SIMILAR_LENGTH = 200  # characters: a wrong answer about as long as the right one, so length tells nothing
REPORTED = ("pairs", "train_pairs", "held_out_pairs", "steps", "preference_accuracy_before",
            "preference_accuracy_after", "mean_logp_margin_before", "mean_logp_margin_after",
            "reward_accuracy_after", "mean_reward_margin", "held_out_dpo_loss_before", "held_out_dpo_loss_after",
            "tokens_per_second")


def build_pairs(count: int, seed: int) -> list[dict[str, str]]:
    rows = [json.loads(line) for line in QA_FILE.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    if count > len(rows) // 2:
        raise SystemExit(f"--pairs at most {len(rows) // 2}: the other half of the sample supplies wrong answers")
    picked, others = rows[:count], rows[count:]
    pairs = []
    for index, row in enumerate(picked):
        if index % 2 == 0:
            rejected = next(o["answer"] for o in others
                            if o["focus"] != row["focus"] and abs(len(o["answer"]) - len(row["answer"])) < SIMILAR_LENGTH)
        else:
            rejected = REFUSALS[index % len(REFUSALS)]
        pairs.append({"prompt": row["question"], "chosen": row["answer"], "rejected": rejected})
    return pairs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=48)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the stage here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="dpo-medquad-") as scratch:
        workdir = args.workdir or Path(scratch) / "work"
        workdir.mkdir(parents=True, exist_ok=True)
        pairs_file = workdir / "pairs.jsonl"
        pairs_file.write_text("".join(json.dumps(p) + "\n" for p in build_pairs(args.pairs, args.seed)))
        env = {**os.environ, "APPLIANCE_HOME": str(Path(scratch) / "home")}
        env.pop("APPLIANCE_CONFIG", None)
        subprocess.run([sys.executable, "-m", "appliance", "train", "--method", "dpo", "--preferences",
                        str(pairs_file), "--workdir", str(workdir), "--max-steps", str(args.steps)],
                       check=True, env=env)
        details = json.loads((workdir / "train-dpo" / "manifest.json").read_text())["details"]
    print(json.dumps({key: details[key] for key in REPORTED}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
