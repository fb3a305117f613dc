"""The ``oto`` command: run the system, mint dev tokens, manage topics and migrations, subscribe.

Every failure a user can cause (an unknown name, a missing file, a bad option, a broker that
does not answer) is one line on stderr naming what was wrong and the valid choices, exit code 2,
no traceback. Services add their own commands: a ``services/<name>/cli.py`` with
``register(app)`` is found and called here, so this module imports no service.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import click
import typer

from shared.outbox_cli import register as register_outbox_commands
from shared.settings import SERVICES, ServiceName, Settings

#: The choices, as Literals so a wrong one is refused naming the valid ones (a test keeps them
#: equal to ``shared.auth.Role`` and ``shared.departments.Department``).
RoleName = Literal["team_staff", "team_leader", "department_staff", "finance", "coordination", "system",
                   "admin", "data_protection", "evaluator", "partner"]
DepartmentName = Literal["sociale-forhold-og-beskaeftigelse", "boern-og-unge", "sundhed-og-omsorg",
                         "kultur-og-borgerservice"]


class CliProblem(Exception):
    """A failure the user caused and can fix; shown as one line, exit code 2."""


#: The command-line framework's own usage errors (Typer ≥ 0.20 carries its own copy of click).
USAGE_ERRORS: tuple[type[Exception], ...] = (CliProblem, click.ClickException,
                                             getattr(typer, "TyperException", CliProblem))
ABORTS: tuple[type[BaseException], ...] = (click.exceptions.Abort, typer.Abort)


class OtoTyper(typer.Typer):
    """A Typer app whose user errors are one line and exit 2 (Typer would draw a box, and an
    exception inside a command would print a traceback)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        argv = list(sys.argv[1:] if not args else args[0])
        try:
            code = super().__call__(argv or ["--help"], standalone_mode=False, prog_name="oto")
        except ABORTS:
            sys.exit(130)
        except USAGE_ERRORS as exc:
            ctx = getattr(exc, "ctx", None)
            where = ctx.command_path if ctx is not None else "oto"
            message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
            if message.startswith("No such command"):
                message += f" Commands: {', '.join(self.command_names())}."
            typer.echo(f"{where}: error: {' '.join(message.split())}", err=True)
            sys.exit(2)
        sys.exit(code if isinstance(code, int) else 0)

    def command_names(self) -> list[str]:
        names = [c.name or c.callback.__name__.replace("_", "-") for c in self.registered_commands
                 if c.callback is not None]
        return sorted(names + [g.name for g in self.registered_groups if g.name])


app = OtoTyper(help="Opgang til Opgang operations.", pretty_exceptions_enable=False,
               epilog="Examples: oto run · oto token --role team_staff --site gellerup · "
                      "oto subscribe sundhed-og-omsorg --from-beginning")
topics_app = typer.Typer(help="Kafka topics.", epilog="Example: oto topics create")
app.add_typer(topics_app, name="topics")
register_outbox_commands(app)


@app.command(epilog="Example: oto run --data-dir data --no-demo")
def run(
    data_dir: Annotated[Path, typer.Option(help="Where the SQLite files and logs go.")] = Path("data"),
    base_port: Annotated[int, typer.Option(help="intake on this port, then +1 each.")] = 8001,
    broker_port: Annotated[int, typer.Option(help="The local broker's port.")] = 9092,
    demo: Annotated[bool, typer.Option(help="Seed demo staff, a budget and families (once).")] = True,
) -> None:
    """Run the whole system on the embedded default (local broker + SQLite)."""
    from shared.embedded import run as run_embedded

    raise typer.Exit(run_embedded(data_dir, base_port, broker_port, demo=demo))


@app.command(epilog="Example: oto token --role department_staff --department boern-og-unge")
def token(
    role: Annotated[RoleName, typer.Option(help="The role.")],
    site: Annotated[str | None, typer.Option(help="For team roles: the site id.")] = None,
    department: Annotated[DepartmentName | None, typer.Option(help="For department staff.")] = None,
    subject: Annotated[str, typer.Option(help="The user's id.")] = "dev-user",
    hours: Annotated[int, typer.Option(help="Validity.")] = 8,
) -> None:
    """Mint a development token signed with the local key (OTO_JWT_SECRET)."""
    from datetime import timedelta

    from shared.auth import mint_token

    try:
        issued = mint_token(Settings(), subject=subject, role=role, site=site, department=department,
                            ttl=timedelta(hours=hours))
    except ValueError as exc:  # a claim the role needs is missing
        raise CliProblem(str(exc)) from None
    typer.echo(issued)


@app.command(epilog="Example: oto migrate intake (OTO_DATABASE_URL names its database)")
def migrate(service: Annotated[Literal["all", "intake", "casework", "referrals", "finance"],
                              typer.Argument(help="A service, or 'all'.")] = "all") -> None:
    """Upgrade a service's database (OTO_DATABASE_URL) to the newest migration."""
    from shared import migrations

    for name in SERVICES if service == "all" else (service,):
        settings = Settings(service=name)
        migrations.upgrade_sync(name, settings.resolved_database_url())
        typer.echo(f"{name}: at head")


@app.command(epilog='Example: oto revision casework -m "add the plan goals table"')
def revision(service: Annotated[ServiceName, typer.Argument(help="The service.")],
             message: Annotated[str, typer.Option("-m")]) -> None:
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


@topics_app.command("create", epilog="Example: oto topics create (OTO_KAFKA_BOOTSTRAP names the broker)")
def create_topics() -> None:
    """Create every domain, department and dead-letter topic that does not exist yet."""
    from shared.kafka import ensure_topics

    settings = Settings()
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    try:
        asyncio.run(asyncio.wait_for(ensure_topics(settings, settings.all_topics()), timeout=30))
    except Exception as exc:  # the broker does not answer: the user's to fix
        raise CliProblem(f"cannot reach the broker at {settings.kafka_bootstrap} ({type(exc).__name__}); "
                         "start it (./run.sh) or set OTO_KAFKA_BOOTSTRAP") from None
    typer.echo("\n".join(settings.all_topics()))


@app.command(epilog="Example: oto subscribe sundhed-og-omsorg --from-beginning --limit 10")
def subscribe(
    department: Annotated[DepartmentName, typer.Argument(help="The department's topic to follow.")],
    from_beginning: Annotated[bool, typer.Option(
        help="Replay the topic from offset 0 (in a fresh group named after --group).")] = False,
    group: Annotated[str | None, typer.Option(help="Consumer group (default oto.dashboard.<dept>).")] = None,
    limit: Annotated[int | None, typer.Option(help="Stop after this many events.")] = None,
    idle_timeout: Annotated[float | None, typer.Option(help="Stop after this many idle seconds.")] = None,
) -> None:
    """Show a department topic's events live in the terminal (the subscriber kit)."""
    from shared.subscriber import SubscriberError, watch

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)  # its connection errors repeat ours
    try:
        asyncio.run(watch(Settings(), department, from_beginning=from_beginning, group=group,
                          limit=limit, idle_timeout=idle_timeout))
    except SubscriberError as exc:
        raise CliProblem(str(exc)) from None


@app.command(epilog="Example: oto dashboard sundhed-og-omsorg --port 8013 --rebuild")
def dashboard(
    department: Annotated[DepartmentName, typer.Argument(help="The department whose slice it shows.")],
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


@app.command(epilog="Example: oto openapi --docs-dir docs")
def openapi(docs_dir: Annotated[Path, typer.Option(help="The docs folder.")] = Path("docs")) -> None:
    """Write every service's OpenAPI document to docs/api/."""
    from shared.apidocs import write_openapi

    for path in write_openapi(docs_dir):
        typer.echo(path)


@app.command(epilog="Example: oto catalogue --docs-dir docs")
def catalogue(docs_dir: Annotated[Path, typer.Option(help="The docs folder.")] = Path("docs")) -> None:
    """Write the AsyncAPI document and the catalogue page from the registry and the slice policy."""
    from shared.catalogue import write_catalogue

    for path in write_catalogue(docs_dir):
        typer.echo(path)


def register_service_commands(target: typer.Typer) -> None:
    """Let each service add its commands (``services/<name>/cli.py`` with ``register(app)``)."""
    for service in SERVICES:
        name = f"services.{service}.cli"
        if importlib.util.find_spec(name) is not None:
            importlib.import_module(name).register(target)


register_service_commands(app)

if __name__ == "__main__":  # run the imported module, so services raise this module's CliProblem
    import shared.cli

    shared.cli.app()
