"""The appliance's one settings model.

Precedence, highest first: values passed in code, ``APPLIANCE_*`` environment variables
(nested with ``__``, e.g. ``APPLIANCE_SERVE__PORT=9000``), the TOML file, defaults. The TOML
file is ``--config FILE``, else ``$APPLIANCE_CONFIG``, else ``appliance.toml`` in the home.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from appliance.bundle.config import BundleConfig
from appliance.dataset.config import DatasetConfig
from appliance.evaluate.config import EvalConfig
from appliance.export.config import ExportConfig
from appliance.kb.config import KnowledgeConfig
from appliance.train.config import TrainConfig
from deid.config import DeidConfig
from deid.errors import ConfigError
from deid.ledger.config import LedgerConfig
from serve.config import ServeConfig

CONFIG_FILE_NAME = "appliance.toml"


def default_home() -> Path:
    """Per-user default; installed servers set ``APPLIANCE_HOME=/var/lib/medical-appliance``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "medical-appliance"


class ModelsConfig(BaseModel):
    base: Path | None = Field(
        None, description="Base model: a Hugging Face directory or a .gguf file; None = embedded SmolLM2"
    )


class KeystoreConfig(BaseModel):
    passphrase: SecretStr | None = Field(
        None, description="Unlocks private keys at rest; None = the key file in the keystore"
    )


class ApplianceSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="APPLIANCE_",
        env_nested_delimiter="__",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(default_factory=default_home)
    workdir: Path | None = Field(None, description="Pipeline work directory; None = <home>/work")
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    keystore: KeystoreConfig = Field(default_factory=KeystoreConfig)
    deid: DeidConfig = Field(default_factory=DeidConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    export: ExportConfig = Field(default_factory=ExportConfig)
    eval: EvalConfig = Field(default_factory=EvalConfig)
    kb: KnowledgeConfig = Field(default_factory=KnowledgeConfig)
    serve: ServeConfig = Field(default_factory=ServeConfig)
    bundle: BundleConfig = Field(default_factory=BundleConfig)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = settings_cls.model_config.get("toml_file")
        sources: tuple[PydanticBaseSettingsSource, ...] = (init_settings, env_settings)
        if toml_file:
            sources += (TomlConfigSettingsSource(settings_cls, toml_file=toml_file),)
        return sources

    @property
    def work_dir(self) -> Path:
        return self.workdir or self.home / "work"

    @property
    def keystore_dir(self) -> Path:
        return self.home / "keystore"

    @property
    def ledger_dir(self) -> Path:
        return self.home / "ledger"

    @property
    def deid_ledger(self) -> Path:
        return self.ledger_dir / "deid.jsonl"

    @property
    def vault_file(self) -> Path:
        """The optional re-identification vault: beside the keystore, not in the ledger directory."""
        return self.home / "vault" / "reid.sqlite"

    @property
    def api_keys_file(self) -> Path:
        return self.home / "api-keys.json"

    @property
    def kb_dir(self) -> Path:
        return self.home / "kb"

    def masked(self) -> dict[str, Any]:
        """The effective settings as JSON-ready data, secrets shown as ``**********``."""
        return json.loads(self.model_dump_json())


def resolve_config_file(explicit: Path | None) -> Path | None:
    if explicit is not None:
        if not explicit.is_file():
            raise ConfigError(f"settings file not found: {explicit}")
        return explicit
    from_env = os.environ.get("APPLIANCE_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"APPLIANCE_CONFIG points to a missing file: {path}")
        return path
    home = Path(os.environ["APPLIANCE_HOME"]) if os.environ.get("APPLIANCE_HOME") else default_home()
    candidate = home / CONFIG_FILE_NAME
    return candidate if candidate.is_file() else None


def load_settings(config_file: Path | None = None, **overrides: Any) -> ApplianceSettings:
    """Build the effective settings; a bad value becomes a :class:`ConfigError` naming the field."""
    path = resolve_config_file(config_file)
    settings_cls: type[ApplianceSettings] = ApplianceSettings
    if path is not None:
        settings_cls = type(
            "ApplianceSettingsFromFile",
            (ApplianceSettings,),
            {"model_config": SettingsConfigDict(**{**ApplianceSettings.model_config, "toml_file": path})},
        )
    try:
        return settings_cls(**overrides)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc'])}: {item['msg']}" for item in error.errors()
        )
        source = f" (from {path})" if path else ""
        raise ConfigError(f"invalid settings{source}: {problems}") from None
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read settings file {path}: {error}") from None
