"""The one-shot broker set-up job: every topic with its DLQ, every SCRAM user, every ACL, in one step.

Three admin requests through the Kafka admin API (confluent-kafka), each idempotent: existing
topics are left alone, a user's credential is upserted (so a rerun rotates a password), and adding
an ACL that exists is a no-op. It replaces ~100 separate Kafka CLI calls (a JVM start each).
Runs in the services' image (``python /opt/oto/setup.py``), so the topic names come from the
code's own ``Settings.all_topics()``. Passwords come from the environment, one variable per user
(``KAFKA_PASSWORD_SVC_INTAKE`` for ``svc-intake``), never from a file or a command line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from acls import acl_rules, load, users

from shared.settings import Settings

SCRAM_ITERATIONS = 8192
PARTITIONS, DLQ_PARTITIONS = 3, 1


def password_variable(user: str) -> str:
    """The variable holding ``user``'s password: ``svc-intake`` → ``KAFKA_PASSWORD_SVC_INTAKE``."""
    return "KAFKA_PASSWORD_" + user.upper().replace("-", "_")


def topic_plan(namespace: str = "oto") -> dict[str, int]:
    """Every topic the system uses and its partition count (DLQs and relay markers: one)."""
    return {topic: DLQ_PARTITIONS if topic.endswith((".dlq", ".relay-marker")) else PARTITIONS
            for topic in Settings(topic_namespace=namespace).all_topics()}


def passwords(config: dict[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """Each broker user's password from ``env``; every missing one is named in the error."""
    missing = [password_variable(u) for u in users(config) if not env.get(password_variable(u))]
    if missing:
        raise SystemExit(f"kafka-setup: set {', '.join(missing)}")
    return {user: env[password_variable(user)] for user in users(config)}


def admin_config(env: Mapping[str, str]) -> dict[str, str]:
    config = {"bootstrap.servers": env.get("KAFKA_BOOTSTRAP", "kafka:9092")}
    if env.get("KAFKA_ADMIN_PASSWORD"):
        config |= {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                   "sasl.username": "admin", "sasl.password": env["KAFKA_ADMIN_PASSWORD"]}
    return config


def create_topics(admin: Any, plan: Mapping[str, int]) -> list[str]:
    """Create the topics of ``plan`` that do not exist yet (one request); returns those created."""
    from confluent_kafka import KafkaError
    from confluent_kafka.admin import NewTopic

    futures = admin.create_topics([NewTopic(t, num_partitions=n, replication_factor=1)
                                   for t, n in plan.items()], request_timeout=30)
    created = []
    for topic, future in futures.items():
        try:
            future.result()
            created.append(topic)
        except Exception as error:  # KafkaException wrapping the broker's answer
            code = getattr(error.args[0], "code", lambda: None)() if error.args else None
            if code == KafkaError.TOPIC_ALREADY_EXISTS:
                continue
            raise
    return created


def upsert_users(admin: Any, secrets: Mapping[str, str]) -> None:
    """Set every user's SCRAM-SHA-512 credential (one request; a rerun rotates passwords)."""
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion

    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, SCRAM_ITERATIONS)
    futures = admin.alter_user_scram_credentials(
        [UserScramCredentialUpsertion(user, info, password.encode()) for user, password in secrets.items()])
    for future in futures.values():
        future.result()


def acl_bindings(config: dict[str, Any]) -> list[Any]:
    """The ACLs of acls.yaml (acls.acl_rules) as admin-API bindings."""
    from confluent_kafka.admin import (
        AclBinding,
        AclOperation,
        AclPermissionType,
        ResourcePatternType,
        ResourceType,
    )

    return [AclBinding(ResourceType[rule["resource"].upper()], rule["name"],
                       ResourcePatternType[rule["pattern"].upper()], f"User:{rule['principal']}", "*",
                       AclOperation[rule["operation"].upper()], AclPermissionType.ALLOW)
            for rule in acl_rules(config)]


def create_acls(admin: Any, config: dict[str, Any]) -> None:
    for future in admin.create_acls(acl_bindings(config), request_timeout=30).values():
        future.result()


def main() -> None:
    from confluent_kafka.admin import AdminClient

    config = load()
    secrets = passwords(config, os.environ)
    admin = AdminClient(admin_config(os.environ))
    created = create_topics(admin, topic_plan())
    upsert_users(admin, secrets)
    create_acls(admin, config)
    print(f"kafka setup done: {len(created)} topics created, {len(secrets)} users, "
          f"{len(acl_rules(config))} ACLs")


if __name__ == "__main__":
    main()
