"""Which rules a run applied: the settings, the site's term list, the detection code installed.

The ledger records these with every document so an auditor can tell runs with different rules
apart, and the journal refuses to resume a run under other settings.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from deid.config import DeidConfig

# The folders whose code and word lists decide what is detected, relative to the deid package.
RULE_FOLDERS = ("detection", "recognizers")


def settings_sha256(config: DeidConfig) -> str:
    """The settings and the content of the site's term list: an edited list is a different rule set."""
    digest = hashlib.sha256(config.model_dump_json().encode("utf-8"))
    if config.site_terms_file is not None and config.site_terms_file.is_file():
        digest.update(b"\0site-terms\0" + hashlib.sha256(config.site_terms_file.read_bytes()).digest())
    return digest.hexdigest()


def engine_versions() -> tuple[str, str]:
    """(detector, rules) versions for the ledger: the package and Presidio releases, and a hash
    of the detection code and word lists actually installed, so runs with different rules differ
    even within one release."""
    try:
        package = version("medical-appliance")
    except PackageNotFoundError:
        package = "0"
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for folder in RULE_FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"{package}+presidio{version('presidio-analyzer')}", digest.hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """The three facts every document entry of a run carries about the rules behind it."""

    settings_sha256: str
    detector_version: str
    rules_version: str

    @classmethod
    def of(cls, config: DeidConfig) -> Fingerprint:
        detector, rules = engine_versions()
        return cls(settings_sha256(config), detector, rules)
