"""Settings from environment variables, all with the one prefix ``OTO_``.

Each service runs in its own process with its own environment, so ``OTO_DATABASE_URL`` is that
service's database (compose sets it per container from ``deploy/env/<service>.env``; the embedded
runner sets it per process). Nothing is read at import time: ``Settings()`` is built in
``create_app`` or by a test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

ServiceName = Literal["intake", "casework", "referrals", "finance"]
SERVICES: tuple[ServiceName, ...] = ("intake", "casework", "referrals", "finance")
#: The development secrets: the one place they are written. Only ``OTO_ENV=dev`` may run with them.
DEV_JWT_SECRET = "dev-only-signing-key-change-me-in-production-0123456789"
DEV_CPR_KEYS = "k1:ZGV2LW9ubHktY3ByLWtleS0zMi1ieXRlcy1sb25nISE="
DEV_CPR_HASH_KEY = "dev-only-cpr-lookup-hash-key"
#: A value an operator was meant to replace (the marker used in templates and examples).
PLACEHOLDER_MARK = "CHANGE-ME"


class DevelopmentSecrets(RuntimeError):
    """A service outside ``OTO_ENV=dev`` was configured with a development or placeholder secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTO_", extra="ignore")

    service: ServiceName = "intake"
    #: ``dev`` allows the development secrets (the embedded runner and the tests set it); any
    #: other value (the default) makes a service refuse to start with them.
    env: str = "production"
    data_dir: Path = Path("data")
    database_url: str | None = None
    #: The database password, kept out of the URL so any character is safe (it is URL-encoded here).
    database_password: SecretStr | None = None
    migrate_on_start: bool = True

    kafka_bootstrap: str = "127.0.0.1:9092"
    #: Apache Kafka: on. The local tansu broker rejects the idempotent-producer handshake: off.
    kafka_idempotence: bool = True
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: str = "SCRAM-SHA-512"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    #: First part of every topic name; tests use a unique one each.
    topic_namespace: str = "oto"
    consumers_enabled: bool = True
    relay_enabled: bool = True
    #: uvicorn worker processes per service; with more than one, one of them (the leader, see
    #: ``shared.leader``) runs the relay and the consumers.
    workers: int = Field(default=1, ge=1)
    consumer_max_attempts: int = Field(default=3, ge=1)
    #: A handler that says "not yet" (``shared.inbox.NotYet``) is tried this many times, backing
    #: off from ``consumer_not_yet_delay`` seconds up to 30 s between tries, before the DLQ.
    consumer_not_yet_attempts: int = Field(default=10, ge=1)
    consumer_not_yet_delay: float = Field(default=0.5, gt=0)
    #: How long a consumer's fetch waits for data while the topic is quiet. The local tansu broker
    #: answers an empty fetch only when this runs out, so it is also the delay before a message
    #: arriving on an idle topic is seen; long keeps an idle service's CPU near zero.
    consumer_fetch_max_wait_ms: int = Field(default=500, ge=1, le=10_000)
    #: The fetch wait for ``consumer_busy_seconds`` after the last message: short, so a hop
    #: between services costs milliseconds while events flow (``shared.kafka.AdaptiveFetchWait``).
    consumer_busy_fetch_max_wait_ms: int = Field(default=10, ge=1, le=10_000)
    consumer_busy_seconds: float = Field(default=5.0, ge=0)
    #: Published outbox rows older than this many days are deleted; unset keeps everything (the
    #: embedded default). Only kept rows can be re-published and shown in the department view.
    outbox_retention_days: int | None = Field(default=None, ge=1)
    #: ``/readyz`` answers 503 when the oldest event waiting to be published is older than this.
    outbox_stall_seconds: float = Field(default=300.0, gt=0)
    #: How often the relay checks that the broker still has what it acknowledged (also on every
    #: reconnect).
    outbox_broker_check_seconds: float = Field(default=15.0, gt=0)

    jwt_secret: SecretStr = SecretStr(DEV_JWT_SECRET)
    jwt_issuer: str = "oto-dev"
    jwt_audience: str = "oto"
    #: Production: the OIDC provider's JWKS; tokens are then RS256 only.
    jwks_url: str | None = None

    #: CPR encryption keys, ``id:base64key`` comma separated; the first one encrypts.
    cpr_keys: SecretStr = SecretStr(DEV_CPR_KEYS)
    cpr_hash_key: SecretStr = SecretStr(DEV_CPR_HASH_KEY)

    #: Where the other services answer over REST (intake asks them for a subject-access report,
    #: casework asks intake and finance for the steering report's aggregates).
    peer_urls: dict[str, str] = Field(default_factory=lambda: {
        "intake": "http://127.0.0.1:8001", "casework": "http://127.0.0.1:8002", "referrals": "http://127.0.0.1:8003",
        "finance": "http://127.0.0.1:8004"})

    log_level: str = "INFO"
    log_json: bool = True
    max_page_size: int = 200
    max_body_bytes: int = 1_000_000
    #: The register import's own body limit (a CSV extract; about 100 bytes a person).
    max_import_bytes: int = 10_000_000

    def resolved_database_url(self) -> str:
        """The configured URL (with ``database_password`` put in), else one SQLite file per service."""
        if self.database_url:
            if self.database_password is None:
                return self.database_url
            from sqlalchemy.engine import make_url  # SQLAlchemy costs 0.3 s: not for `oto run`

            url = make_url(self.database_url).set(password=self.database_password.get_secret_value())
            return url.render_as_string(hide_password=False)
        return f"sqlite+aiosqlite:///{self.data_dir / f'{self.service}.db'}"

    def development_secrets(self) -> list[str]:
        """The ``OTO_*`` secrets still set to a development or placeholder value."""
        secrets = {"OTO_JWT_SECRET": (self.jwt_secret, DEV_JWT_SECRET)} if self.jwks_url is None else {}
        if self.service == "intake":
            secrets |= {"OTO_CPR_KEYS": (self.cpr_keys, DEV_CPR_KEYS),
                        "OTO_CPR_HASH_KEY": (self.cpr_hash_key, DEV_CPR_HASH_KEY)}
        return [name for name, (value, dev) in secrets.items()
                if value.get_secret_value() == dev or PLACEHOLDER_MARK in value.get_secret_value()]

    def refuse_development_secrets(self) -> None:
        """Raise unless this is a development run or every secret is a real one."""
        if self.env != "dev" and (names := self.development_secrets()):
            raise DevelopmentSecrets(
                f"refusing to start {self.service}: {', '.join(names)} still the development value; "
                "set real secrets, or OTO_ENV=dev on a development machine")

    def domain_topic(self, service: str | None = None) -> str:
        return f"{self.topic_namespace}.{service or self.service}.events"

    def marker_topic(self, service: str | None = None) -> str:
        """Where a service's relay writes its broker incarnation marker (one partition)."""
        return f"{self.topic_namespace}.{service or self.service}.relay-marker"

    def department_topic(self, department: str) -> str:
        return f"{self.topic_namespace}.department.{department}"

    def all_topics(self) -> list[str]:
        """Every topic the system uses, dead-letter topics included (for topic creation)."""
        from shared.departments import Department

        main = [self.domain_topic(s) for s in SERVICES]
        main += [self.department_topic(d.value) for d in Department]
        return main + [f"{t}.dlq" for t in main] + [self.marker_topic(s) for s in SERVICES]
