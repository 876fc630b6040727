"""The ``offcurate`` command: one Typer app, one ``main`` that turns known errors into a one-line message.

    offcurate pipeline -o runs/demo          # the whole chain on the embedded sample
    offcurate --help                         # every stage, what it reads and writes

Heavy imports (polars, math-verify, torch) happen inside the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import sys

import click
import typer

from .curate.errors import OffcurateError

app = typer.Typer(
    name="offcurate",
    help=(
        "Teacher traces -> majority-vote labels -> off-policy GRPO.\n\n"
        "Stages chain through folders of Parquet shards: download -> filter -> vote -> stats, "
        "then train. `offcurate pipeline -o runs/demo` runs the curation chain on the embedded sample."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def main() -> None:
    """Entry point: exit 0 on success, 2 with a one-line message on bad input or usage."""
    from .curate.report import console

    try:
        code = app(standalone_mode=False)
    except OffcurateError as err:
        console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        console.print("[bold red]interrupted[/] (outputs of the running stage were not written)")
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
