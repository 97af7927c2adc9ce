"""The `inrkit` command line: one module per command group; this file assembles the app."""

from __future__ import annotations

from typing import Annotated

import typer

from . import bench, export, fit, fit_many
from .common import OneLineErrors, friendly, version_callback

app = typer.Typer(cls=OneLineErrors, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Fit implicit neural representations to images, audio, video and 3-D shapes.")
for command in (fit.fit, fit.render, fit.models, export.export, export.decode, export.rd, export.compress,
                export.decompress):
    app.command()(friendly(command))
app.command("eval")(friendly(fit.eval_))
app.add_typer(bench.bench_app, name="bench")
fit_many.register(app)


@app.callback()
def _root(version: Annotated[bool | None, typer.Option("--version", callback=version_callback, is_eager=True,
                                                          help="print the version and exit")] = None) -> None:
    """Fit implicit neural representations to images, audio, video and 3-D shapes."""


def main() -> None:
    app()
