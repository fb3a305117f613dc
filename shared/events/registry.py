"""The event registry: every event type, its pydantic model, its version and its JSON Schema.

Types are named ``dk.aarhus.oto.<service>.<event>.v<major>``; a breaking change is a new major.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar
from uuid import UUID

from pydantic import BaseModel, ConfigDict, ValidationError

from shared.codes import Code
from shared.departments import DepartmentSlug

TYPE_PREFIX = "dk.aarhus.oto"


def examples(*payloads: dict[str, Any]) -> ConfigDict:
    """Model config carrying example payloads (the catalogue shows them; a test validates them)."""
    return ConfigDict(json_schema_extra={"examples": list(payloads)})


class DomainEvent(BaseModel):
    """Base of every event payload. Unknown fields are ignored so old consumers accept additions."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    event_type: ClassVar[str] = ""

    def partition_key(self) -> str:
        """The Kafka key: the family for family events, else the aggregate (override)."""
        raise NotImplementedError


class FamilyEvent(DomainEvent):
    """An event about one family: keyed by family, and always carries the site for dashboards."""

    family_id: UUID
    site_id: Code
    #: The departments the family's consent covered when this happened; only they receive the
    #: event on their topics. ``None`` where another rule decides (a referral's own consent check).
    shared_with: list[DepartmentSlug] | None = None

    def partition_key(self) -> str:
        return str(self.family_id)


@dataclass(frozen=True)
class EventSpec:
    type: str
    service: str
    name: str
    version: int
    model: builtins.type[DomainEvent]
    summary: str

    def json_schema(self) -> dict[str, Any]:
        schema = self.model.model_json_schema(mode="serialization")
        schema["$id"] = f"urn:{self.type}"
        schema["title"] = self.model.__name__
        return schema

    def examples(self) -> list[dict[str, Any]]:
        extra = self.model.model_config.get("json_schema_extra") or {}
        found = extra.get("examples", []) if isinstance(extra, dict) else []
        return [dict(item) for item in found if isinstance(item, dict)] if isinstance(found, list) else []


class EventRegistry:
    """Maps event types to models; one instance, filled by the modules in ``shared.events``."""

    def __init__(self) -> None:
        self._by_type: dict[str, EventSpec] = {}
        #: Per event type, the model's JSON validator, or None where ``parse_json`` must not be used.
        self._json_validators: dict[str, Callable[[bytes], Any] | None] = {}

    def register(self, service: str, name: str, version: int, model: type[DomainEvent]) -> None:
        event_type = f"{TYPE_PREFIX}.{service}.{name}.v{version}"
        if event_type in self._by_type and self._by_type[event_type].model is not model:
            raise ValueError(f"event type registered twice: {event_type}")
        model.event_type = event_type
        self._json_validators.pop(event_type, None)
        summary = (model.__doc__ or "").strip().splitlines()[0] if model.__doc__ else ""
        self._by_type[event_type] = EventSpec(event_type, service, name, version, model, summary)

    def spec(self, event_type: str) -> EventSpec:
        try:
            return self._by_type[event_type]
        except KeyError:
            raise UnknownEventType(event_type) from None

    def __contains__(self, event_type: object) -> bool:
        return event_type in self._by_type

    def __iter__(self) -> Iterator[EventSpec]:
        _load_contract_modules()
        return iter(sorted(self._by_type.values(), key=lambda spec: spec.type))

    def parse(self, event_type: str, data: dict[str, Any]) -> DomainEvent:
        """Validate a payload against its model; raise UnknownEventType or InvalidPayload."""
        model = self.spec(event_type).model
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            raise InvalidPayload.from_validation(event_type, exc) from None

    def parse_json(self, event_type: str, value: bytes) -> DomainEvent | None:
        """Validate a payload straight from its JSON bytes, in one pass with no dict in between
        (about half the cost of ``json.loads`` and ``parse``), where that is sure to give what
        ``parse(event_type, json.loads(value))`` gives. None when it cannot say: an unknown type,
        a model that reads some JSON differently (see ``_reads_json_alike``), or a value the JSON
        validator refuses (it is stricter than ``json.loads``). The caller then takes ``parse``,
        which gives the answer or the exact error the consumer always gave.
        """
        try:
            validate = self._json_validators[event_type]
        except KeyError:
            validate = self._json_validator(event_type)
        if validate is None:
            return None
        try:
            event: DomainEvent = validate(value)
        except ValidationError:
            return None
        return event

    def _json_validator(self, event_type: str) -> Callable[[bytes], Any] | None:
        """``model_validate_json`` without its per-call wrapper (a consumer's hot loop), looked
        up once per type; None for an unknown type (not kept: it may be registered later)."""
        spec = self._by_type.get(event_type)
        if spec is None:
            return None
        validator = spec.model.__pydantic_validator__
        validate = validator.validate_json if _reads_json_alike(spec.model) else None
        self._json_validators[event_type] = validate
        return validate

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        return {spec.type: spec.json_schema() for spec in self}


#: Core-schema node types whose validation of JSON input gives what validating ``json.loads``'s
#: output gives (tests/shared/test_inbox_parsing.py checks it on every registered model's examples).
#: ``decimal`` is not one: ``2.0`` in JSON becomes ``Decimal('2')``, via a float ``Decimal('2.0')``.
#: Nor are validator functions, unions and anything not listed: such models take ``parse``.
_JSON_ALIKE = frozenset({"model", "model-fields", "model-field", "default", "nullable", "literal", "str",
                         "int", "bool", "uuid", "date", "datetime", "list", "definitions", "definition-ref"})
#: Schema keys that hold values (defaults, literals, config, examples), not schemas.
_NOT_SCHEMAS = frozenset({"metadata", "config", "expected", "default", "serialization", "ref", "schema_ref"})


def _reads_json_alike(model: type[BaseModel]) -> bool:
    """True when every node of the model's validation schema is of a type in ``_JSON_ALIKE``."""
    return _schema_types(model.__pydantic_core_schema__) <= _JSON_ALIKE


def _schema_types(node: Any) -> set[str]:
    """The ``type`` of every schema nested in a core schema."""
    found: set[str] = set()
    if isinstance(node, dict):
        if isinstance(node.get("type"), str):
            found.add(node["type"])
        for key, value in node.items():
            if key not in _NOT_SCHEMAS:
                found |= _schema_types(value)
    elif isinstance(node, list | tuple):
        for value in node:
            found |= _schema_types(value)
    return found


class UnknownEventType(LookupError):
    """The ce_type is not in the registry."""


class InvalidPayload(ValueError):
    """The payload does not match the schema. The message names fields, never their values."""

    @classmethod
    def from_validation(cls, event_type: str, exc: ValidationError) -> InvalidPayload:
        fields = sorted({".".join(str(p) for p in err["loc"]) + f" ({err['type']})" for err in exc.errors()})
        return cls(f"{event_type}: invalid fields: {', '.join(fields)}")


REGISTRY = EventRegistry()
E = TypeVar("E", bound=type[DomainEvent])


def event(service: str, name: str, version: int = 1) -> Callable[[E], E]:
    """Class decorator: register a payload model as ``dk.aarhus.oto.<service>.<name>.v<version>``."""

    def register(model: E) -> E:
        REGISTRY.register(service, name, version, model)
        return model

    return register


def _load_contract_modules() -> None:
    """Import every producing service's contract module so the registry is complete."""
    import importlib
    import pkgutil

    import shared.events as package

    for info in pkgutil.iter_modules(package.__path__):
        if info.name not in {"envelope", "registry", "compat"}:
            importlib.import_module(f"shared.events.{info.name}")
