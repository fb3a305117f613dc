"""Intake's commands for ``oto`` (found by ``shared.cli``): the register import, with a
progress bar for large files. Imports of the service happen inside the command, so ``oto token``
stays quick."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from shared.settings import Settings


def register(app: typer.Typer) -> None:
    """Add intake's commands to ``oto``."""
    app.command("import-register", epilog="Example: oto import-register extract.csv")(import_register)


def import_register(path: Annotated[Path, typer.Argument(
        help="The register extract (CSV, UTF-8).", exists=True, dir_okay=False, readable=True)]) -> None:
    """Import a register extract into intake's database (OTO_DATABASE_URL), showing progress."""
    from shared.cli import CliProblem
    from shared.errors import Unprocessable

    try:
        raise typer.Exit(asyncio.run(run_import(Settings(service="intake"), path)))
    except Unprocessable as exc:  # empty, not UTF-8, not CSV: the user's file to fix
        reasons = "; ".join(e["message"] for e in exc.extra.get("errors", []))
        raise CliProblem(f"{path}: {exc.detail} ({reasons})") from None


async def run_import(settings: Settings, path: Path) -> int:
    """Import the file; print the report. Bad rows are listed by line and reason, never their CPR."""
    from rich.console import Console
    from rich.progress import Progress

    from services.intake import service
    from services.intake.cpr import CprVault
    from services.intake.domain import group_households, read_import
    from shared import migrations
    from shared.db import make_engine, make_sessionmaker

    console = Console()
    content = path.read_bytes()
    url = settings.resolved_database_url()
    await migrations.upgrade("intake", url)
    households = len(group_households(read_import(content.decode("utf-8-sig", errors="replace")))[0])
    vault = CprVault.from_settings(settings.cpr_keys.get_secret_value(),
                                   settings.cpr_hash_key.get_secret_value())
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            await service.seed_sites(session)
            with Progress(console=console) as progress:
                task = progress.add_task("importing households", total=households)
                report = await service.import_register(
                    session, vault=vault, content=content,
                    progress=lambda done: progress.update(task, completed=done))
            await session.commit()
    finally:
        await engine.dispose()
    if report.already_imported:
        console.print("This file was imported before: nothing changed.")
    console.print(f"households imported: {report.households}, persons: {report.persons}, "
                  f"rejected rows: {len(report.rejected)}")
    for row in report.rejected:
        console.print(f"  line {row.line}: {row.reason}")
    return 0
