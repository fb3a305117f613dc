"""The register import from the command line, with a progress bar for large files."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from services.intake import service
from services.intake.cpr import CprVault
from services.intake.domain import group_households, read_import
from shared import migrations
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings


async def run_import(settings: Settings, path: Path) -> int:
    """Import the file; print the report. Bad rows are listed by line and reason, never their CPR."""
    console = Console()
    content = path.read_bytes()
    url = settings.resolved_database_url()
    await migrations.upgrade("intake", url)
    households = len(group_households(read_import(content.decode("utf-8-sig")))[0])
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
