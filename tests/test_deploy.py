"""Compose's secrets, ports, external listener and broker set-up, rendered and run where they can be.

No Docker engine runs here, so each piece is tested on its own with real tools: compose's model is
rendered (tests.compose_support) and validated against the compose specification's JSON schema;
the broker's configuration is rendered by its own bash script with a password full of characters
that broke the old ``sed``; the set-up job runs against the real broker process; the database
init script runs against the real PostgreSQL.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import json
import os
import re
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path
from types import ModuleType

import asyncpg
import jsonschema
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from shared.settings import Settings
from tests.compose_support import (
    AWKWARD,
    ROOT,
    MissingVariable,
    filled_secrets,
    raw_compose,
    render_compose,
    template_variables,
)
from tests.support import Broker, run_admin_sql

KAFKA = ROOT / "deploy/kafka"
APPS = ("intake", "casework", "referrals", "finance")


def _module(name: str) -> ModuleType:
    sys.path.insert(0, str(KAFKA))
    try:
        spec = importlib.util.spec_from_file_location(name, KAFKA / f"{name}.py")
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(KAFKA))


def _compose_schema() -> dict:
    schema = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(schema.read_text())


# --- compose: the specification, secrets, ports -------------------------------------------------

def test_the_rendered_compose_file_is_valid_against_the_compose_specification() -> None:
    jsonschema.validate(render_compose(filled_secrets()), _compose_schema())


def test_the_compose_specification_check_catches_a_broken_file() -> None:
    broken = render_compose(filled_secrets())
    broken["services"]["intake"]["stop_grace_period"] = {"seconds": 30}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, _compose_schema())


def test_compose_refuses_to_start_until_every_secret_is_set() -> None:
    for name in template_variables():
        env = {**filled_secrets(), name: ""}
        with pytest.raises(MissingVariable, match=name):
            render_compose(env)


def test_the_secrets_template_lists_exactly_what_compose_requires_and_sets_nothing() -> None:
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", json.dumps(raw_compose())))
    names = template_variables()
    assert set(names) == required
    assert len(names) == len(set(names))
    lines = (ROOT / "deploy/secrets.env.template").read_text().splitlines()
    assert all(line.endswith("=") for line in lines if line and not line.startswith("#")), \
        "the template must leave every value empty"
    assert "/.env" in (ROOT / ".gitignore").read_text().splitlines()


def test_no_secret_is_written_in_the_repository_configuration() -> None:
    """One source: every secret comes from .env; none is repeated in compose, env files or scripts."""
    compose = raw_compose()
    for service in compose["services"].values():
        for key, value in (service.get("environment") or {}).items():
            if any(word in key for word in ("PASSWORD", "SECRET", "CPR_KEYS", "HASH_KEY")):
                assert str(value).startswith("${") and ":?" in str(value), key
    for path in [*(ROOT / "deploy").rglob("*"), ROOT / "docker-compose.yml"]:
        if path.is_file() and path.suffix != ".lock":
            assert "dev-password" not in path.read_text(), path


def test_service_ports_bind_to_loopback_unless_the_operator_opts_in() -> None:
    rendered = render_compose(filled_secrets())["services"]
    published = {name: s["ports"] for name, s in rendered.items() if "ports" in s}
    assert set(published) == {*APPS, "kafka"}
    for name, ports in published.items():
        assert all(port.startswith("127.0.0.1:") for port in ports), name
    wider = render_compose({**filled_secrets(), "OTO_BIND_ADDRESS": "0.0.0.0"})["services"]
    assert wider["intake"]["ports"] == ["0.0.0.0:8001:8000"]


# --- the broker: external listener, least privilege, passwords -----------------------------------

def _render_broker_config(tmp_path: Path, template: Path, **env: str) -> str:
    output = tmp_path / "out.properties"
    subprocess.run(["bash", str(KAFKA / "render-config.sh"), str(template), str(output)], check=True,
                   env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True)
    return output.read_text()


def _properties(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def _jaas_password(jaas: str, key: str = "password") -> str:
    match = re.search(rf'\b{key}="((?:[^"\\]|\\.)*)"', jaas)
    assert match, jaas
    return re.sub(r"\\(.)", r"\1", match.group(1))


def test_the_broker_configuration_takes_passwords_with_any_character(tmp_path: Path) -> None:
    admin, controller = f"adm{AWKWARD}in", f"ctl{AWKWARD}&&\\1"
    rendered = _render_broker_config(tmp_path, KAFKA / "server.properties",
                                     KAFKA_ADMIN_PASSWORD=admin, KAFKA_CONTROLLER_PASSWORD=controller)
    props = _properties(rendered)
    assert _jaas_password(props["listener.name.client.scram-sha-512.sasl.jaas.config"]) == admin
    controller_jaas = props["listener.name.controller.plain.sasl.jaas.config"]
    assert _jaas_password(controller_jaas) == controller
    assert _jaas_password(controller_jaas, "user_controller") == controller
    assert "${" not in json.dumps(props)
    client = _properties(_render_broker_config(tmp_path, KAFKA / "admin.properties.template",
                                               KAFKA_ADMIN_PASSWORD=admin))
    assert _jaas_password(client["sasl.jaas.config"]) == admin
    assert oct((tmp_path / "out.properties").stat().st_mode & 0o777) == "0o600"


def test_the_broker_configuration_is_not_rendered_without_its_passwords(tmp_path: Path) -> None:
    done = subprocess.run(["bash", str(KAFKA / "render-config.sh"), str(KAFKA / "server.properties"),
                           str(tmp_path / "o")], env={"PATH": os.environ["PATH"]}, capture_output=True,
                          text=True)
    assert done.returncode != 0 and "KAFKA_ADMIN_PASSWORD" in done.stderr


def test_an_external_sasl_listener_is_published_on_the_host_loopback(tmp_path: Path) -> None:
    props = _properties(_render_broker_config(tmp_path, KAFKA / "server.properties",
                                              KAFKA_ADMIN_PASSWORD="a", KAFKA_CONTROLLER_PASSWORD="c"))
    listeners = dict(item.split("://") for item in props["listeners"].split(","))
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert listeners["EXTERNAL"] == ":9094"
    assert protocols["EXTERNAL"] == "SASL_PLAINTEXT"
    assert "EXTERNAL://localhost:9094" in props["advertised.listeners"].split(",")
    assert "ScramLoginModule" in props["listener.name.external.scram-sha-512.sasl.jaas.config"]
    kafka = render_compose(filled_secrets())["services"]["kafka"]
    assert kafka["ports"] == ["127.0.0.1:9094:9094"]
    assert kafka["environment"]["KAFKA_EXTERNAL_ADVERTISED"] == "localhost:9094"
    moved = render_compose({**filled_secrets(), "OTO_KAFKA_EXTERNAL_ADVERTISED": "kafka.example:19094"})
    assert moved["services"]["kafka"]["environment"]["KAFKA_EXTERNAL_ADVERTISED"] == "kafka.example:19094"


def test_every_broker_listener_authenticates_and_only_admin_and_controller_are_super_users(
        tmp_path: Path) -> None:
    props = _properties(_render_broker_config(tmp_path, KAFKA / "server.properties",
                                              KAFKA_ADMIN_PASSWORD="a", KAFKA_CONTROLLER_PASSWORD="c"))
    protocols = dict(item.split(":") for item in props["listener.security.protocol.map"].split(","))
    assert set(protocols.values()) == {"SASL_PLAINTEXT"}  # no anonymous listener at all
    assert props["super.users"].split(";") == ["User:admin", "User:controller"]
    assert props["sasl.mechanism.controller.protocol"] == "PLAIN"


# --- the set-up job ---------------------------------------------------------------------------------

def test_the_setup_job_is_one_step_over_the_codes_topics_users_and_acls() -> None:
    setup, acls = _module("setup"), _module("acls")
    config = acls.load()
    assert set(setup.topic_plan()) == set(Settings().all_topics())
    single = {t for t in Settings().all_topics() if t.endswith((".dlq", ".relay-marker"))}
    assert {t for t, n in setup.topic_plan().items() if n == 1} == single
    bindings = setup.acl_bindings(config)
    assert len(bindings) == len(acls.acl_rules(config)) and len(bindings) > 50
    env = {setup.password_variable(user): f"{user}{AWKWARD}" for user in acls.users(config)}
    assert setup.passwords(config, env) == {user: f"{user}{AWKWARD}" for user in acls.users(config)}
    with pytest.raises(SystemExit, match="KAFKA_PASSWORD_DEPT_BOERN_OG_UNGE"):
        setup.passwords(config, {**env, "KAFKA_PASSWORD_DEPT_BOERN_OG_UNGE": ""})
    compose = render_compose(filled_secrets())["services"]["kafka-setup"]
    assert compose["command"] == ["python", "/opt/oto/setup.py"]
    assert set(env) <= set(compose["environment"])


@pytest.mark.broker
def test_the_setup_job_creates_the_topics_in_one_request_and_a_rerun_changes_nothing(broker: Broker) -> None:
    from confluent_kafka.admin import AdminClient

    setup = _module("setup")
    namespace = f"t{uuid.uuid4().hex[:10]}"
    plan = setup.topic_plan(namespace)
    admin = AdminClient(setup.admin_config({"KAFKA_BOOTSTRAP": broker.bootstrap}))
    assert sorted(setup.create_topics(admin, plan)) == sorted(plan)
    assert setup.create_topics(admin, plan) == []  # idempotent
    metadata = admin.list_topics(timeout=20).topics
    assert {t: len(metadata[t].partitions) for t in plan} == plan


# --- PostgreSQL init ------------------------------------------------------------------------------

@pytest.mark.postgres
async def test_the_database_init_script_takes_a_password_with_any_character(postgres_server: str) -> None:
    service = f"oto_init_{uuid.uuid4().hex[:8]}"
    password = f"pw{AWKWARD}'; DROP ROLE postgres; --"
    url = postgres_server.rsplit("/", 1)
    env = {**os.environ, "OTO_INIT_SERVICES": service, f"{service.upper()}_DB_PASSWORD": password,
           "PGHOST": "127.0.0.1", "POSTGRES_DB": url[1]}
    try:
        subprocess.run(["bash", str(ROOT / "deploy/postgres/init.sh")], env=env, check=True,
                       capture_output=True, text=True)
        connection = await asyncpg.connect(host="127.0.0.1", user=service, password=password,
                                           database=service)
        assert await connection.fetchval("select current_user") == service
        await connection.close()
    finally:
        run_admin_sql(postgres_server, f'DROP DATABASE IF EXISTS "{service}" WITH (FORCE)')
        run_admin_sql(postgres_server, f'DROP ROLE IF EXISTS "{service}"')


# --- reproducible images ------------------------------------------------------------------------

def _lock() -> dict[str, tuple[str, int]]:
    """name → (version, number of hashes) from deploy/requirements.lock."""
    text = (ROOT / "deploy/requirements.lock").read_text()
    pins = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        if match := re.match(r"([A-Za-z0-9_.-]+)==([^\s\\;]+)", block):
            pins[canonicalize_name(match.group(1))] = (match.group(2), block.count("--hash=sha256:"))
    return pins


def test_the_lock_file_pins_every_dependency_of_pyproject_with_hashes() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = _lock()
    required = [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["ops"]]]
    stale = [str(r) for r in required if canonicalize_name(r.name) not in pins
             or not r.specifier.contains(pins[canonicalize_name(r.name)][0], prereleases=True)]
    assert stale == [], f"deploy/requirements.lock is stale for {stale}: run deploy/lock.sh"
    assert all(hashes for _, hashes in pins.values()), "every pin needs its hashes"
    assert "uvloop" in pins and "websockets" in pins  # extras are locked too (uvicorn[standard])
    assert "pytest" not in pins  # the image gets no test tools


def test_the_image_installs_only_the_locked_hashes() -> None:
    dockerfile = (ROOT / "deploy/Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.lock" in dockerfile
    assert "pip install --no-cache-dir --no-deps ." in dockerfile
    assert dockerfile.index("requirements.lock") < dockerfile.index("--no-deps")
