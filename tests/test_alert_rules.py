"""The Prometheus alert rules shipped in deploy/ parse and name only metrics the services export."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

import shared.app  # noqa: F401  (imports every module that defines a metric)

RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "alerts.yml"


def exported_metric_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
    return names


def test_the_alert_rules_parse_and_name_only_exported_metrics() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    rules = [rule for group in groups for rule in group["rules"]]
    assert {rule["alert"] for rule in rules} >= {
        "OtoOutboxStalled", "OtoOutboxParked", "OtoConsumerLag", "OtoDeadLetters"}
    named = set()
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
        named |= set(re.findall(r"\boto_[a-z_]+", rule["expr"]))
    assert named >= {"oto_outbox_oldest_age_seconds", "oto_outbox_parked_events", "oto_consumer_lag",
                     "oto_dlq_messages_total"}
    assert named <= exported_metric_names(), named - exported_metric_names()
