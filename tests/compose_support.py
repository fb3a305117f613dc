"""Render docker-compose.yml as ``docker compose config`` would, for tests on a machine without Docker.

Compose parses the YAML (resolving merge keys), then interpolates ``${VAR}``,
``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?message}`` and ``${VAR?message}`` in every
string value from the environment and ``.env``, turning ``$$`` into ``$``. That is all this file
uses, so that is all this renders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
TEMPLATE = ROOT / "deploy/secrets.env.template"
VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
#: Characters that break naive substitution (sed's "/" and "&", shell and JAAS quotes, URL syntax).
AWKWARD = "/&\\\"'$@:?#%"


class MissingVariable(ValueError):
    """A ``${VAR:?message}`` whose variable is unset or empty: compose refuses to start."""


def interpolate(text: str, env: Mapping[str, str]) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name"), match.group("op"), match.group("arg") or ""
        value = env.get(name)
        empty = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":?", "?") and empty:
            raise MissingVariable(f"{name}: {arg}")
        if op in (":-", "-") and empty:
            return arg
        return value or ""

    return VARIABLE.sub(substitute, text)


def _walk(node: Any, env: Mapping[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    return node


def raw_compose() -> dict[str, Any]:
    """The file as parsed, before interpolation (merge keys resolved)."""
    return yaml.safe_load(COMPOSE_FILE.read_text())  # type: ignore[no-any-return]


def render_compose(env: Mapping[str, str]) -> dict[str, Any]:
    """The compose model after interpolation with ``env`` (the stand-in for ``.env``)."""
    return _walk(raw_compose(), env)  # type: ignore[no-any-return]


def template_variables() -> list[str]:
    return [line.split("=", 1)[0] for line in TEMPLATE.read_text().splitlines()
            if line and not line.startswith("#")]


def filled_secrets() -> dict[str, str]:
    """The template filled in as an operator would: a distinct, awkward value for every secret."""
    values = {name: f"{name.lower()}-{AWKWARD}-x" for name in template_variables()}
    values["KAFKA_ADMIN_PASSWORD"] = "admin/&pass"  # kafka-storage cannot quote , [ ] " =
    values["OTO_CPR_KEYS"] = "k1:cmVhbC1jcHIta2V5LTMyLWJ5dGVzLWxvbmctLS0tLS0="
    return values
