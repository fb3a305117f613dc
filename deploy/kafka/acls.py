"""The broker's users and ACLs, derived from acls.yaml (applied by setup.py, checked by the tests).

Each service ``svc-<s>`` writes its domain topic, every department topic, and the DLQs of the
topics it consumes; reads the domain topics it consumes; uses the group ``oto.<s>``; writes and
reads its relay's marker topic ``oto.<s>.relay-marker``. Each
department ``dept-<d>`` reads only ``oto.department.<d>`` with groups ``oto.dashboard.<d>…``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

HERE = Path(__file__).resolve().parent


def acl_rules(config: dict[str, Any]) -> list[dict[str, str]]:
    """Every ACL as a dict: principal, resource, name, pattern, operation."""
    rules: list[dict[str, str]] = []

    def allow(principal: str, resource: str, name: str, operation: str, pattern: str = "literal") -> None:
        rules.append({"principal": principal, "resource": resource, "name": name,
                      "pattern": pattern, "operation": operation})

    departments = config["departments"]
    for service, spec in config["services"].items():
        user = f"svc-{service}"
        for topic in [f"oto.{service}.events", *(f"oto.department.{d}" for d in departments)]:
            allow(user, "topic", topic, "Write")
            allow(user, "topic", topic, "Describe")
        # The relay's incarnation marker: it writes one and reads it back (no consumer group).
        for op in ("Write", "Read", "Describe"):
            allow(user, "topic", f"oto.{service}.relay-marker", op)
        for source in spec["consumes"]:
            for op in ("Read", "Describe"):
                allow(user, "topic", f"oto.{source}.events", op)
            allow(user, "topic", f"oto.{source}.events.dlq", "Write")
            allow(user, "topic", f"oto.{source}.events.dlq", "Describe")
        allow(user, "group", f"oto.{service}", "Read")
    for department in departments:
        user = f"dept-{department}"
        for op in ("Read", "Describe"):
            allow(user, "topic", f"oto.department.{department}", op)
        allow(user, "group", f"oto.dashboard.{department}", "Read", pattern="prefixed")
    return rules


def users(config: dict[str, Any]) -> list[str]:
    """Every SCRAM user: one per service, one per department."""
    return [f"svc-{s}" for s in config["services"]] + [f"dept-{d}" for d in config["departments"]]


def load() -> dict[str, Any]:
    """acls.yaml, the source of truth."""
    return yaml.safe_load((HERE / "acls.yaml").read_text())  # type: ignore[no-any-return]

