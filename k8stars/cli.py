"""The one command-line face of k8stars: ``k8stars <command>``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from k8stars import __version__
from k8stars.tars.errors import IdlError


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="k8stars")
def main() -> None:
    """k8stars: TARS microservices on Kubernetes."""


@main.command("tars2py")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--outdir", required=True, type=click.Path(file_okay=False), help="Directory to write into.")
@click.option("-I", "--include", "includes", multiple=True, type=click.Path(file_okay=False),
              help="Directory to search for #include files (repeatable).")  # fmt: skip
def tars2py(files: tuple[str, ...], outdir: str, includes: tuple[str, ...]) -> None:
    """Compile .tars IDL FILES into typed Python modules (structs, enums, consts, proxies, servants)."""
    from k8stars.tars.idl.codegen import write

    try:
        written = write(list(files), outdir, list(includes))
    except IdlError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    for p in written:
        click.echo(str(Path(p)))
