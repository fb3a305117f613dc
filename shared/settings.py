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
DEV_JWT_SECRET = "dev-only-signing-key-change-me-in-production-0123456789"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OTO_", extra="ignore")

    service: ServiceName = "intake"
    data_dir: Path = Path("data")
    database_url: str | None = None
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
    consumer_max_attempts: int = Field(default=3, ge=1)
    #: A handler that says "not yet" (``shared.inbox.NotYet``) is tried this many times, backing
    #: off from ``consumer_not_yet_delay`` seconds up to 30 s between tries, before the DLQ.
    consumer_not_yet_attempts: int = Field(default=10, ge=1)
    consumer_not_yet_delay: float = Field(default=0.5, gt=0)
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
    cpr_keys: SecretStr = SecretStr("k1:ZGV2LW9ubHktY3ByLWtleS0zMi1ieXRlcy1sb25nISE=")
    cpr_hash_key: SecretStr = SecretStr("dev-only-cpr-lookup-hash-key")

    log_level: str = "INFO"
    log_json: bool = True
    max_page_size: int = 200
    max_body_bytes: int = 1_000_000

    def resolved_database_url(self) -> str:
        """The configured URL, else one SQLite file per service under ``data_dir``."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / f'{self.service}.db'}"

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
