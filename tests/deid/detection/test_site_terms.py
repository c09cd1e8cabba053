"""The hospital's own term list: found in notes, checked on load, and part of the audited settings."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from appliance.cli import main as cli_main
from deid.config import DeidConfig
from deid.detection.engine import PhiDetector
from deid.errors import SiteTermsError
from deid.recognizers.site_terms import SiteTermsRecognizer
from deid.run.fingerprint import settings_sha256
from deid.site_terms_file import load_site_terms
from tests.deid.detection.conftest import covered

SITE = 'HOSPITAL = ["MGH", "Ellison 4", "MGH Ellison 4"]\nCLINICIAN = ["Anna Zorvath"]\n'


@pytest.fixture()
def site_file(tmp_path: Path) -> Path:
    path = tmp_path / "site-terms.toml"
    path.write_text(SITE)
    return path


def test_terms_found_whole_in_any_case_and_spacing(site_file: Path) -> None:
    recognizer = SiteTermsRecognizer(load_site_terms(site_file))
    text = "tx from mgh ellison  4 today; seen by ANNA ZORVATH. MGHX and ellison 45 are not terms."
    found = sorted((text[r.start : r.end], r.entity_type) for r in recognizer.analyze(text, []))
    assert ("mgh ellison  4", "HOSPITAL") in found and ("ANNA ZORVATH", "CLINICIAN") in found
    assert not any("MGHX" in term or "45" in term for term, _ in found)


def test_detector_uses_the_site_list(site_file: Path, detector: PhiDetector) -> None:
    text = "Outside records: MGH notes reviewed."
    assert not covered(text, detector.detect(text), "MGH")  # without a cue, no shipped list knows a site's acronyms
    with_site = PhiDetector(DeidConfig(site_terms_file=site_file))
    assert covered(text, with_site.detect(text), "MGH")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('HOSPITALS = ["MGH"]', "unknown entity type 'HOSPITALS'"),
        ('HOSPITAL = "MGH"', "HOSPITAL must be a list of strings"),
        ('HOSPITAL = ["MGH"', "not valid UTF-8 TOML"),
    ],
)
def test_bad_lists_are_refused_without_quoting_terms(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "site.toml"
    path.write_text(content)
    with pytest.raises(SiteTermsError) as refused:
        load_site_terms(path)
    assert message in str(refused.value) and "MGH" not in str(refused.value)


def test_missing_list_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SiteTermsError, match="cannot be read"):
        load_site_terms(tmp_path / "absent.toml")


def test_edited_list_changes_the_audited_settings_hash(site_file: Path) -> None:
    config = DeidConfig(site_terms_file=site_file)
    before = settings_sha256(config)
    site_file.write_text(SITE + 'LOCATION = ["Charlestown Navy Yard"]\n')
    assert settings_sha256(config) != before


def test_run_refuses_a_bad_list_before_any_work(
    tmp_path: Path, appliance_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("Seen at MGH 3/12.")
    bad = tmp_path / "site.toml"
    bad.write_text('WARDS = ["Ellison 4"]')
    monkeypatch.setenv("APPLIANCE_DEID__SITE_TERMS_FILE", str(bad))
    monkeypatch.setattr(sys, "argv", ["appliance", "deid", "run", str(notes), "--out", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as done:
        cli_main.run()
    err = " ".join(capsys.readouterr().err.split())
    assert done.value.code == 2 and "unknown entity type 'WARDS'" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "a.txt").exists()
