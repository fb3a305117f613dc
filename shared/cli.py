"""The ``oto`` command: run the system, mint dev tokens, manage topics and migrations, subscribe."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from shared.settings import SERVICES, Settings

app = typer.Typer(help="Opgang til Opgang operations.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics.")
app.add_typer(topics_app, name="topics")


@app.command()
def run(
    data_dir: Annotated[Path, typer.Option(help="Where the SQLite files and logs go.")] = Path("data"),
    base_port: Annotated[int, typer.Option(help="intake on this port, then +1 each.")] = 8001,
    broker_port: Annotated[int, typer.Option(help="The local broker's port.")] = 9092,
    demo: Annotated[bool, typer.Option(help="Seed demo staff, a budget and families (once).")] = True,
) -> None:
    """Run the whole system on the embedded default (local broker + SQLite)."""
    from shared.embedded import run as run_embedded

    raise typer.Exit(run_embedded(data_dir, base_port, broker_port, demo=demo))


@app.command()
def token(
    role: Annotated[str, typer.Option(help="team_staff, team_leader, department_staff, finance, "
                                           "coordination, system, admin")],
    site: Annotated[str | None, typer.Option(help="For team roles: the site id.")] = None,
    department: Annotated[str | None, typer.Option(help="For department staff.")] = None,
    subject: Annotated[str, typer.Option(help="The user's id.")] = "dev-user",
    hours: Annotated[int, typer.Option(help="Validity.")] = 8,
) -> None:
    """Mint a development token signed with the local key (OTO_JWT_SECRET)."""
    from datetime import timedelta

    from shared.auth import mint_token

    typer.echo(mint_token(Settings(), subject=subject, role=role, site=site,
                          department=department, ttl=timedelta(hours=hours)))


@app.command()
def migrate(service: Annotated[str, typer.Argument(help="A service, or 'all'.")] = "all") -> None:
    """Upgrade a service's database (OTO_DATABASE_URL) to the newest migration."""
    from shared import migrations

    for name in SERVICES if service == "all" else (service,):
        settings = Settings(service=name)
        migrations.upgrade_sync(name, settings.resolved_database_url())
        typer.echo(f"{name}: at head")


@app.command()
def revision(service: str, message: Annotated[str, typer.Option("-m")]) -> None:
    """Autogenerate a migration for a service from its models (developers)."""
    import tempfile

    from alembic import command

    from shared import migrations

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{tmp}/scratch.db"
        migrations.upgrade_sync(service, url)
        existing = list((migrations.ROOT / "services" / service / "migrations").glob("[0-9]*.py"))
        command.revision(migrations.alembic_config(service, url), message=message,
                         autogenerate=True, rev_id=f"{len(existing) + 1:04d}")


@topics_app.command("create")
def create_topics() -> None:
    """Create every domain, department and dead-letter topic that does not exist yet."""
    from shared.kafka import ensure_topics

    settings = Settings()
    asyncio.run(ensure_topics(settings, settings.all_topics()))
    typer.echo("\n".join(settings.all_topics()))


@app.command()
def subscribe(
    department: Annotated[str, typer.Argument(help="e.g. sundhed-og-omsorg")],
    from_beginning: Annotated[bool, typer.Option(
        help="Replay the topic from offset 0 (in a fresh group named after --group).")] = False,
    group: Annotated[str | None, typer.Option(help="Consumer group (default oto.dashboard.<dept>).")] = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="Stop after this many idle seconds.")] = None,
) -> None:
    """Show a department topic's events live in the terminal (the subscriber kit)."""
    from shared.subscriber import watch

    asyncio.run(watch(Settings(), department, from_beginning=from_beginning, group=group,
                      limit=limit, idle_timeout=idle_timeout))


@app.command()
def dashboard(
    department: Annotated[str, typer.Argument(help="e.g. sundhed-og-omsorg")],
    port: Annotated[int, typer.Option(help="The HTTP port.")] = 8011,
    host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
    state: Annotated[Path | None, typer.Option(help="The SQLite state file "
                                                    "(default <OTO_DATA_DIR>/dashboard-<dept>.db).")] = None,
    rebuild: Annotated[bool, typer.Option(help="Forget the state and fold the topic from offset 0.")] = False,
) -> None:
    """Serve a department's dashboard in the browser: its slice, live, folded from its topic."""
    from dashboard.__main__ import serve
    from shared.departments import Department

    serve(Department(department), host=host, port=port, rebuild=rebuild,
          state=str(state) if state is not None else None)


@app.command("import-register")
def import_register(path: Annotated[Path, typer.Argument(help="The register extract (CSV, UTF-8).")]) -> None:
    """Import a register extract into intake's database (OTO_DATABASE_URL), showing progress."""
    from services.intake.cli import run_import

    raise typer.Exit(asyncio.run(run_import(Settings(service="intake"), path)))


@app.command()
def openapi(docs_dir: Annotated[Path, typer.Option(help="The docs folder.")] = Path("docs")) -> None:
    """Write every service's OpenAPI document to docs/api/."""
    from shared.apidocs import write_openapi

    for path in write_openapi(docs_dir):
        typer.echo(path)


@app.command()
def catalogue(docs_dir: Annotated[Path, typer.Option(help="The docs folder.")] = Path("docs")) -> None:
    """Write the AsyncAPI document and the catalogue page from the registry and the slice policy."""
    from shared.catalogue import write_catalogue

    for path in write_catalogue(docs_dir):
        typer.echo(path)


if __name__ == "__main__":
    app()
