"""CycloneDX 1.5 (JSON) software bill of materials of exactly what a bundle ships.

Why from the wheels themselves and not the build environment: the SBOM must describe the bytes that
cross the air gap. Each component's name, version and licence come from the wheel's own metadata
(read with importlib.metadata), its hash is the sha256 of the wheel file the installer will use,
and models are listed as ``machine-learning-model`` components with their file hashes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from appliance.bundle.wheelhouse import Wheel, wheel_metadata
from deid.fileio import sha256_file

SPEC_VERSION = "1.5"
UNKNOWN_LICENCE = "NOASSERTION"
_LICENCE_CLASSIFIER = "License :: "


def licence_of(metadata: Any) -> dict[str, Any]:
    """A CycloneDX licence choice: SPDX expression when declared, else the name the package states."""
    expression = metadata.get("License-Expression")
    if expression:
        return {"expression": expression.strip()}
    text = (metadata.get("License") or "").strip()
    if text and "\n" not in text and len(text) <= 100 and text.upper() != "UNKNOWN":
        return {"license": {"name": text}}
    classifiers = [
        value.split(" :: ")[-1]
        for value in metadata.get_all("Classifier") or []
        if value.startswith(_LICENCE_CLASSIFIER) and value.count(" :: ") >= 2
    ]
    if classifiers:
        return {"license": {"name": " AND ".join(dict.fromkeys(classifiers))}}
    if text and text.upper() != "UNKNOWN":  # a whole licence text pasted in: name it by its first line
        return {"license": {"name": text.splitlines()[0][:100]}}
    return {"license": {"name": UNKNOWN_LICENCE}}


def _purl(name: str, version: str) -> str:
    return f"pkg:pypi/{canonicalize_name(name)}@{version}"


def _requires(metadata: Any) -> list[str]:
    names: list[str] = []
    for text in metadata.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
            names.append(canonicalize_name(requirement.name))
    return names


def build_sbom(
    appliance_version: str,
    wheels: Iterable[Wheel],
    models: Iterable[Path],
    timestamp: str,
) -> dict[str, Any]:
    """The SBOM document; every package has a version, a licence entry and the wheel's sha256."""
    components: list[dict[str, Any]] = []
    requires: dict[str, list[str]] = {}
    refs: dict[str, str] = {}
    for wheel in sorted(wheels, key=lambda item: canonicalize_name(item.name)):
        metadata = wheel_metadata(wheel.path).metadata
        ref = _purl(wheel.name, wheel.version)
        refs[canonicalize_name(wheel.name)] = ref
        requires[ref] = _requires(metadata)
        components.append(
            {
                "type": "library",
                "bom-ref": ref,
                "name": metadata["Name"],
                "version": wheel.version,
                "purl": ref,
                "licenses": [licence_of(metadata)],
                "hashes": [{"alg": "SHA-256", "content": sha256_file(wheel.path)}],
                "properties": [
                    {"name": "medical-appliance:wheel", "value": wheel.path.name},
                    {"name": "medical-appliance:repacked-from-installed", "value": str(wheel.repacked).lower()},
                ],
            }
        )
    for model in sorted(models):
        digest = sha256_file(model)
        components.append(
            {
                "type": "machine-learning-model",
                "bom-ref": f"model:{model.name}",
                "name": model.name,
                "hashes": [{"alg": "SHA-256", "content": digest}],
            }
        )
    dependencies = [
        {"ref": ref, "dependsOn": sorted(refs[name] for name in names if name in refs)} for ref, names in requires.items()
    ]
    seed = appliance_version + "".join(component["hashes"][0]["content"] for component in components)
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, seed)}",
        "version": 1,
        "metadata": {
            "timestamp": timestamp,
            "component": {
                "type": "application",
                "bom-ref": "medical-appliance-bundle",
                "name": "medical-appliance",
                "version": appliance_version,
            },
        },
        "components": components,
        "dependencies": dependencies,
    }
