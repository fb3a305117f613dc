"""The compose file and broker configuration have the structure ops rely on (no Docker engine here).

``docker compose config`` cannot run without an engine, so ``tests.compose_support`` renders the
file the way compose does (variable interpolation, merge keys) and the tests check the result,
including against the compose specification's JSON schema.
"""

from __future__ import annotations

import importlib.util

import pytest

from shared.app import SHUTDOWN_SECONDS
from shared.departments import Department
from shared.settings import SERVICES, Settings
from tests.compose_support import ROOT, filled_secrets, render_compose

COMPOSE = render_compose(filled_secrets())
APPS = list(SERVICES)


def _env_file(name: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in (ROOT / "deploy/env" / name).read_text().splitlines()
             if line and not line.startswith("#")]
    return {k: v for k, v in pairs}


def _render_module():
    spec = importlib.util.spec_from_file_location("acls", ROOT / "deploy/kafka/acls.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_compose_has_kafka_postgres_setup_and_the_four_services() -> None:
    assert set(COMPOSE["services"]) == {"postgres", "kafka", "kafka-setup", *APPS}
    assert COMPOSE["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert COMPOSE["services"]["postgres"]["image"].startswith("postgres:")
    for name in ("postgres", "kafka"):
        assert COMPOSE["services"][name]["healthcheck"]["test"]


def test_kafka_runs_kraft_with_scram_and_deny_by_default() -> None:
    props = (ROOT / "deploy/kafka/server.properties").read_text()
    assert "process.roles=broker,controller" in props
    assert "sasl.enabled.mechanisms=SCRAM-SHA-512" in props
    assert "allow.everyone.if.no.acl.found=false" in props
    assert "StandardAuthorizer" in props and "auto.create.topics.enable=false" in props
    assert "--add-scram" in (ROOT / "deploy/kafka/start.sh").read_text()
    assert "sed " not in (ROOT / "deploy/kafka/start.sh").read_text()


@pytest.mark.parametrize("app", APPS)
def test_each_service_is_built_from_the_one_dockerfile_and_waits_for_healthy_dependencies(
        app: str, monkeypatch: pytest.MonkeyPatch) -> None:
    service = COMPOSE["services"][app]
    assert service["build"]["dockerfile"] == "deploy/Dockerfile"
    assert service["build"]["args"]["SERVICE"] == app
    assert service["env_file"] == ["deploy/env/common.env", f"deploy/env/{app}.env"]
    assert service["depends_on"] == {"postgres": {"condition": "service_healthy"},
                                     "kafka": {"condition": "service_healthy"},
                                     "kafka-setup": {"condition": "service_completed_successfully"}}
    assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert int(service["stop_grace_period"].removesuffix("s")) > SHUTDOWN_SECONDS  # graceful stop fits
    env = _env_file(f"{app}.env")
    assert env["OTO_SERVICE"] == app
    assert env["OTO_DATABASE_URL"] == f"postgresql+asyncpg://{app}@postgres:5432/{app}"
    assert env["OTO_KAFKA_USERNAME"] == f"svc-{app}"
    merged = {**_env_file("common.env"), **env, **service["environment"]}
    for name, value in merged.items():  # as the container sees them: environment variables
        monkeypatch.setenv(name, str(value))
    settings = Settings()
    settings.refuse_development_secrets()  # the rendered configuration is a production one
    assert settings.database_password is not None and settings.kafka_password is not None


def test_the_env_files_hold_no_secrets() -> None:
    for path in (ROOT / "deploy/env").glob("*.env"):
        names = set(_env_file(path.name))
        assert not {n for n in names if any(w in n for w in ("PASSWORD", "SECRET", "KEY"))}, path.name


def test_host_ports_are_distinct() -> None:
    ports = [COMPOSE["services"][app]["ports"][0].rsplit(":", 2)[1] for app in APPS]
    assert len(set(ports)) == len(ports)


def _readable(rules: list[dict[str, str]], principal: str) -> set[str]:
    return {r["name"] for r in rules if r["principal"] == principal and r["resource"] == "topic"
            and r["operation"] == "Read"}


def test_each_department_can_read_only_its_own_topic() -> None:
    render = _render_module()
    rules = render.acl_rules(render.load())
    for department in Department:
        principal = f"dept-{department.value}"
        assert _readable(rules, principal) == {f"oto.department.{department.value}"}
        writes = [r for r in rules if r["principal"] == principal and r["operation"] == "Write"]
        assert writes == []
        groups = [r for r in rules if r["principal"] == principal and r["resource"] == "group"]
        expected = [(f"oto.dashboard.{department.value}", "prefixed")]
        assert [(g["name"], g["pattern"]) for g in groups] == expected


def test_services_write_their_own_domain_topic_and_read_only_what_they_consume() -> None:
    render = _render_module()
    config = render.load()
    rules = render.acl_rules(config)
    for app in APPS:
        principal = f"svc-{app}"
        writes = {r["name"] for r in rules if r["principal"] == principal and r["operation"] == "Write"}
        assert f"oto.{app}.events" in writes
        assert not {f"oto.{other}.events" for other in APPS if other != app} & writes
        # Besides what it consumes, a service reads back its own relay's marker and nothing more.
        consumed = {f"oto.{s}.events" for s in config["services"][app]["consumes"]}
        assert _readable(rules, principal) == consumed | {f"oto.{app}.relay-marker"}


def test_nobody_but_admin_reads_a_dead_letter_topic() -> None:
    render = _render_module()
    assert not [r for r in render.acl_rules(render.load()) if r["name"].endswith(".dlq")
                and r["operation"] == "Read"]


def test_every_broker_user_has_a_password_and_services_use_theirs() -> None:
    render = _render_module()
    setup = COMPOSE["services"]["kafka-setup"]["environment"]
    variables = {f"KAFKA_PASSWORD_{u.upper().replace('-', '_')}" for u in render.users(render.load())}
    assert variables <= set(setup)
    for app in APPS:
        assert COMPOSE["services"][app]["environment"]["OTO_KAFKA_PASSWORD"] == \
            setup[f"KAFKA_PASSWORD_SVC_{app.upper()}"]
