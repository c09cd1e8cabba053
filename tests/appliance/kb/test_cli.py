"""``appliance kb`` as an operator uses it: add, re-add, list, remove, one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.appliance.kb.conftest import MARKDOWN, TEXT


def appliance(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "APPLIANCE_HOME": str(home)}
    environment.pop("APPLIANCE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "appliance", "kb", *args], capture_output=True, text=True, env=environment, timeout=300
    )


def test_kb_verbs(tmp_path: Path) -> None:
    home = tmp_path / "home"
    missing = appliance("list", home=home)
    assert missing.returncode == 3 and "no knowledge base" in missing.stderr and "Traceback" not in missing.stderr

    folder = tmp_path / "approved"
    folder.mkdir()
    (folder / "sepsis.md").write_text(MARKDOWN, encoding="utf-8")
    (folder / "warfarin.txt").write_text(TEXT, encoding="utf-8")
    (folder / "ignored.bin").write_bytes(b"\x00\x01")
    added = appliance("add", str(folder), home=home)
    assert added.returncode == 0, added.stderr
    assert "2 files: 2 added, 0 updated, 0 unchanged" in added.stderr
    assert (home / "kb" / "knowledge.sqlite").is_file()

    listed = appliance("list", home=home)
    assert listed.returncode == 0
    assert str((folder / "sepsis.md").resolve()) in listed.stdout and "2 sources" in listed.stderr

    removed = appliance("remove", str(folder / "sepsis.md"), home=home)
    assert removed.returncode == 0 and "removed 1 documents" in removed.stderr
    again = appliance("remove", str(folder / "sepsis.md"), home=home)
    assert again.returncode == 3 and "nothing in the knowledge base matches" in again.stderr

    bad = appliance("add", str(tmp_path / "nope.md"), home=home)
    assert bad.returncode == 3 and "knowledge source not found" in bad.stderr
