"""``appliance bundle build`` and ``appliance bundle verify``: the signed offline bundle."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from appliance.cli.context import console, settings_from

if TYPE_CHECKING:
    from appliance.config import ApplianceSettings
    from deid.keystore import Keystore


def _keystore(ctx: typer.Context) -> tuple[Keystore, ApplianceSettings]:
    from deid.keystore import Keystore

    settings = settings_from(ctx)
    passphrase = settings.keystore.passphrase
    return Keystore.open(settings.keystore_dir, passphrase.get_secret_value() if passphrase else None), settings


def register(app: typer.Typer) -> None:
    bundle_app = typer.Typer(help="Signed offline bundle for air-gapped servers: build and verify.", no_args_is_help=True)
    app.add_typer(bundle_app, name="bundle")

    @bundle_app.command("build")
    def build(
        ctx: typer.Context,
        out: Annotated[Path, typer.Option("--out", help="Bundle file: .tar, .tar.gz or .tar.zst")],
        models: Annotated[
            list[Path] | None,
            typer.Option("--models", help="GGUF file to ship (repeat); the first is served. Default: the embedded model"),
        ] = None,
        adapter: Annotated[Path | None, typer.Option("--adapter", help="LoRA adapter GGUF to ship and serve")] = None,
        model_card: Annotated[Path | None, typer.Option("--model-card", help="Model card; default: MODEL_CARD.md beside the first model")] = None,
        target: Annotated[str | None, typer.Option("--target", help="cpu or cuda (default: bundle.target)")] = None,
        wheelhouse: Annotated[list[Path] | None, typer.Option("--wheelhouse", help="Directory of pre-made wheels to prefer (repeat)")] = None,
        partial_wheelhouse: Annotated[
            bool,
            typer.Option(
                "--partial-wheelhouse",
                help="Ship only the appliance wheel and --wheelhouse wheels (test bundles; the installer then needs --reuse-site-packages)",
            ),
        ] = False,
        release: Annotated[
            str | None,
            typer.Option("--release", help="Release label (default: the appliance version); names the install directory"),
        ] = None,
    ) -> None:
        """Build the signed offline bundle (wheelhouse, models, config, systemd unit, installer, SBOM)."""
        from appliance.bundle.build import BuildRequest, build_bundle
        from deid.errors import ConfigError

        keystore, settings = _keystore(ctx)
        chosen = target or settings.bundle.target
        if chosen not in ("cpu", "cuda"):
            raise ConfigError(f"--target must be cpu or cuda, not {chosen!r}")
        name = settings.bundle.signing_key_name
        request = BuildRequest(
            out=out,
            target=chosen,
            models=tuple(models or ()),
            adapter=adapter,
            model_card=model_card,
            wheelhouse_dirs=tuple(wheelhouse or ()),
            partial_wheelhouse=partial_wheelhouse,
            release=release,
            compress_level=settings.bundle.compress_level,
        )
        with console.status("building the bundle (wheelhouse, models, SBOM, signature)"):
            result = build_bundle(request, keystore.signing_key(name), keystore.public_key_pem(name))
        manifest = result.manifest
        typer.echo(f"bundle:             {result.bundle} ({result.bundle.stat().st_size / 1e6:.1f} MB, {len(manifest['files'])} files)")
        typer.echo(f"bundle sha256:      {result.bundle_sha256}")
        typer.echo(f"release public key: {result.public_key_file}")
        typer.echo(f"key fingerprint:    {manifest['key_fingerprint']}")
        typer.echo(f"verifier sha256:    {result.verifier_sha256}")
        if not manifest["wheelhouse_complete"]:
            typer.echo("note: partial wheelhouse (test bundle); not installable on its own")

    @bundle_app.command("verify")
    def verify(
        ctx: typer.Context,
        bundle: Annotated[Path, typer.Argument(help="Bundle file to check")],
        public_key: Annotated[
            Path | None, typer.Option("--public-key", help="Release public key (PEM); default: this keystore's release key")
        ] = None,
    ) -> None:
        """Check the bundle's signature and every byte; exit 0 only when it is intact and authentic."""
        from appliance.bundle.verify_bundle import BundleRejected
        from appliance.bundle.verify_bundle import verify as verify_bundle
        from deid.errors import InputError

        if public_key is not None:
            if not public_key.is_file():
                raise InputError(f"public key file not found: {public_key}")
            pem = public_key.read_bytes()
        else:
            keystore, settings = _keystore(ctx)
            pem = keystore.public_key_pem(settings.bundle.signing_key_name)
        try:
            manifest = verify_bundle(bundle, pem)
        except BundleRejected as error:
            raise InputError(f"bundle refused: {error}") from None
        typer.echo(
            f"OK: {manifest['name']} {manifest['release']} ({manifest['target']}), {len(manifest['files'])} files, "
            f"signed by key {manifest['key_fingerprint_verified'][:16]}"
        )
