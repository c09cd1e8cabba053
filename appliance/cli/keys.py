"""CLI area 'keys': create, list and revoke the API's keys."""

from __future__ import annotations

from typing import Annotated

import typer

from appliance.cli.context import console, settings_from

keys_app = typer.Typer(help="Create, list and revoke API keys (stored hashed in the appliance home).",
                       no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach this area's commands to the root app."""
    app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    ctx: typer.Context,
    role: Annotated[str, typer.Option("--role", help="clinician, auditor or admin")],
    label: Annotated[str, typer.Option("--label", help="A note for administrators")] = "",
) -> None:
    """Create a key; it is printed once, alone on the last line, and cannot be shown again."""
    from deid.errors import InputError
    from serve.auth.keys import ApiKeyStore
    from serve.auth.protocol import Role

    try:
        chosen = Role(role)
    except ValueError:
        raise InputError(f"unknown role {role!r}; choose clinician, auditor or admin") from None
    if len(label) > 80:
        raise InputError("the label may have at most 80 characters")
    key, info = ApiKeyStore(settings_from(ctx).api_keys_file).create(chosen, label)
    console.print(f"created {info.role.value} key {info.key_id}; store it now, it is not shown again:")
    typer.echo(key)


@keys_app.command("list")
def keys_list(ctx: typer.Context) -> None:
    """List keys: id, role, state, created, label (never the secret)."""
    from serve.auth.keys import ApiKeyStore

    for info in ApiKeyStore(settings_from(ctx).api_keys_file).list():
        state = "active" if info.active else f"revoked {info.revoked_at:%Y-%m-%d}"
        typer.echo(f"{info.key_id}\t{info.role.value}\t{state}\t{info.created_at:%Y-%m-%d %H:%M}\t{info.label}")


@keys_app.command("revoke")
def keys_revoke(ctx: typer.Context, key_id: Annotated[str, typer.Argument(help="The key id from 'keys list'")]) -> None:
    """Revoke a key; running servers refuse it from their next request."""
    from serve.auth.keys import ApiKeyStore

    info = ApiKeyStore(settings_from(ctx).api_keys_file).revoke(key_id)
    typer.echo(f"revoked {info.key_id} ({info.role.value})")
