"""The ``appliance`` command line: one Typer application, one module per area."""
