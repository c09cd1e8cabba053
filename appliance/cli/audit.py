"""CLI area 'audit': verify the de-identification ledger, report on it, manage the keys auditors need."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from appliance.cli.context import console, settings_from

if TYPE_CHECKING:
    from appliance.config import ApplianceSettings
    from deid.keystore import Keystore
    from deid.ledger.auth import LedgerAuth

audit_app = typer.Typer(
    help="Audit the de-identification ledger: verify it, report on it, export the keys to check it.",
    no_args_is_help=True,
)

LedgerArgument = Annotated[
    Path | None, typer.Argument(help="Ledger file (JSONL); default: the appliance's de-identification ledger")
]
PublicKeyOption = Annotated[
    list[Path] | None,
    typer.Option("--public-key", help="PEM file of trusted public keys (repeatable); default: the keystore's"),
]
AllowUnsealedOption = Annotated[
    bool,
    typer.Option("--allow-unsealed", help="Accept entries after the last checkpoint (a service is still writing)"),
]
KeyNameOption = Annotated[str | None, typer.Option("--name", help="Key name in the keystore; default: the ledger key")]


def open_keystore(settings: ApplianceSettings, *, must_exist: bool) -> Keystore:
    """The appliance keystore, unlocked with the configured passphrase (or its key file)."""
    from deid.errors import KeystoreError
    from deid.keystore import Keystore

    if must_exist and not Keystore.exists(settings.keystore_dir):
        raise KeystoreError(f"no keystore at {settings.keystore_dir}; pass --public-key FILE")
    secret = settings.keystore.passphrase
    return Keystore.open(settings.keystore_dir, secret.get_secret_value() if secret is not None else None)


def _trusted_keys(settings: ApplianceSettings, files: list[Path] | None) -> tuple[list[bytes], LedgerAuth | None]:
    """Public keys to check signatures, and the keystore's ledger auth whenever this appliance has a keystore.

    The auth (entry MACs, head records) is what catches entries appended and ledgers cut back by
    someone without the key, so it is used even when the public keys come from files.
    """
    from deid.errors import InputError, KeystoreError
    from deid.keystore import Keystore
    from deid.ledger.auth import LedgerAuth

    store = open_keystore(settings, must_exist=True) if not files or Keystore.exists(settings.keystore_dir) else None
    auth = LedgerAuth.from_keystore(store, settings.ledger.auth_secret) if store is not None else None
    if files:
        pems = []
        for file in files:
            try:
                pems.append(file.read_bytes())
            except OSError as error:
                raise InputError(f"cannot read public key file {file}: {error.strerror}") from None
        return pems, auth
    assert store is not None
    infos = store.keys(settings.ledger.signing_key_name)
    if not infos:
        raise KeystoreError("the keystore holds no ledger key yet; pass --public-key FILE")
    return [info.public_pem for info in infos], auth


def _ledger_path(settings: ApplianceSettings, ledger: Path | None) -> Path:
    from deid.errors import InputError

    path = ledger or settings.deid_ledger
    if not path.is_file():
        raise InputError(f"ledger not found: {path}")
    return path


@audit_app.command("verify")
def verify(
    ctx: typer.Context,
    ledger: LedgerArgument = None,
    public_key: PublicKeyOption = None,
    allow_unsealed: AllowUnsealedOption = False,
    expected_head: Annotated[
        str | None,
        typer.Option("--expected-head", help="A head hash cited elsewhere (model card, manifest) that must be in it"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full result as JSON on stdout")] = False,
) -> None:
    """Check chain, order and signatures; exit 0 when intact, otherwise name the first bad entry."""
    from deid.errors import LedgerVerificationError
    from deid.ledger.verify import verify_ledger

    settings = settings_from(ctx)
    path = _ledger_path(settings, ledger)
    keys, auth = _trusted_keys(settings, public_key)
    result = verify_ledger(path, keys, expected_head=expected_head, allow_unsealed=allow_unsealed, auth=auth)
    if as_json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    if result.problem is not None:
        raise LedgerVerificationError(result.problem.sequence, f"{result.problem.kind.value}: {result.problem.detail}")
    if not as_json:
        unsealed = f", {result.unsealed} unsealed (allowed)" if result.unsealed else ""
        authenticated = "entries authenticated" if result.entries_authenticated else "entries NOT authenticated (no keystore)"
        typer.echo(
            f"intact: {result.entries} entries, {result.checkpoints} signed checkpoints{unsealed}, {authenticated}; "
            f"keys {', '.join(result.key_ids) or 'none'}; head {result.head_hash}"
        )


@audit_app.command("head")
def head(ctx: typer.Context, ledger: LedgerArgument = None) -> None:
    """Print the ledger's head hash (what dataset manifests and model cards cite)."""
    from deid.ledger.verify import ledger_head

    typer.echo(ledger_head(_ledger_path(settings_from(ctx), ledger)))


@audit_app.command("report")
def report(
    ctx: typer.Context,
    ledger: LedgerArgument = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Directory for report.html and report.json")] = None,
    deidentified_dir: Annotated[
        Path | None,
        typer.Option("--deidentified-dir", help="De-identified outputs for spot-check excerpts (never raw inputs)"),
    ] = None,
    sample: Annotated[int | None, typer.Option("--sample", min=0, max=1000, help="Spot-check sample size")] = None,
    seed: Annotated[int | None, typer.Option("--seed", help="Seed of the spot-check sample (reproducible pick)")] = None,
    public_key: PublicKeyOption = None,
    allow_unsealed: AllowUnsealedOption = False,
) -> None:
    """Write a self-contained HTML page and JSON: counts, timeline, HIPAA coverage, review flags, spot checks."""
    from deid.errors import InputError
    from deid.fileio import atomic_write_text
    from deid.ledger.report import build_report
    from deid.ledger.report_html import render_html
    from deid.ledger.verify import verify_ledger

    settings = settings_from(ctx)
    path = _ledger_path(settings, ledger)
    if deidentified_dir is not None and not deidentified_dir.is_dir():
        raise InputError(f"de-identified directory not found: {deidentified_dir}")
    keys, auth = _trusted_keys(settings, public_key)
    verification = verify_ledger(path, keys, allow_unsealed=allow_unsealed, auth=auth)
    data = build_report(
        path,
        verification,
        deidentified_dir=deidentified_dir,
        sample_size=settings.ledger.report_sample_size if sample is None else sample,
        seed=seed,
    )
    target = out or settings.work_dir / "audit"
    atomic_write_text(target / "report.json", json.dumps(data, indent=2))
    atomic_write_text(target / "report.html", render_html(data))
    state = "intact" if verification.ok else f"NOT intact ({verification.problem})"
    console.print(f"ledger {state}; {data['documents']} documents; report in {target}", markup=False)
    typer.echo(str(target / "report.html"))


@audit_app.command("export-key")
def export_key(
    ctx: typer.Context,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="PEM file to write; default: print to stdout")] = None,
    name: KeyNameOption = None,
) -> None:
    """Export the public keys (current and retired) auditors need to verify ledgers."""
    settings = settings_from(ctx)
    store = open_keystore(settings, must_exist=False)
    key_name = name or settings.ledger.signing_key_name
    if out is None:
        store.signing_key(key_name)
        typer.echo(b"".join(info.public_pem for info in store.keys(key_name)).decode("ascii"), nl=False)
        return
    store.export_public_key(key_name, out)
    console.print(f"public keys of '{key_name}' written to {out}", markup=False)


@audit_app.command("rotate-key")
def rotate_key(ctx: typer.Context, name: KeyNameOption = None) -> None:
    """Replace the signing key; old public keys are kept so existing ledgers still verify."""
    settings = settings_from(ctx)
    store = open_keystore(settings, must_exist=False)
    key_name = name or settings.ledger.signing_key_name
    store.signing_key(key_name)
    typer.echo(store.rotate(key_name))


@audit_app.command("keys")
def list_keys(ctx: typer.Context, name: KeyNameOption = None) -> None:
    """List key ids with their creation and retirement times."""
    settings = settings_from(ctx)
    store = open_keystore(settings, must_exist=True)
    for info in store.keys(name or settings.ledger.signing_key_name):
        state = f"retired {info.retired}" if info.retired else "current"
        typer.echo(f"{info.key_id}  created {info.created}  {state}")


@audit_app.command("reveal")
def reveal(
    ctx: typer.Context,
    document_id: Annotated[str, typer.Argument(help="The document's keyed id as the ledger shows it")],
    surrogate: Annotated[str, typer.Argument(help="The surrogate seen in the de-identified text")],
    reason: Annotated[str, typer.Option("--reason", help="Reason code recorded in the ledger (e.g. court-order-17)")],
    actor: Annotated[str, typer.Option("--actor", help="Who asks; recorded in the ledger")] = "auditor",
) -> None:
    """Re-identify one surrogate from the vault (only when the vault is enabled); the access is ledgered."""
    from deid.errors import LedgerError
    from deid.ledger.auth import LedgerAuth
    from deid.ledger.writer import LedgerWriter
    from deid.vault import Vault, VaultError

    settings = settings_from(ctx)
    if not settings.ledger.vault_enabled:
        raise VaultError("the re-identification vault is disabled (ledger.vault_enabled = false)")
    store = open_keystore(settings, must_exist=True)
    if not settings.deid_ledger.is_file():
        raise LedgerError(f"ledger not found: {settings.deid_ledger}")
    with (
        LedgerWriter.open(
            settings.deid_ledger,
            store.signing_key(settings.ledger.signing_key_name),
            auth=LedgerAuth.from_keystore(store, settings.ledger.auth_secret),
            actor=actor,
            checkpoint_every=settings.ledger.checkpoint_every,
        ) as ledger,
        Vault.open(settings.vault_file, store.secret(settings.ledger.vault_secret)) as vault,
    ):
        typer.echo(vault.reveal(document_id, surrogate, ledger=ledger, reason=reason))


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the root app."""
    app.add_typer(audit_app, name="audit")
