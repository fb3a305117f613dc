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

    def register(self, service: str, name: str, version: int, model: type[DomainEvent]) -> None:
        event_type = f"{TYPE_PREFIX}.{service}.{name}.v{version}"
        if event_type in self._by_type and self._by_type[event_type].model is not model:
            raise ValueError(f"event type registered twice: {event_type}")
        model.event_type = event_type
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

    def json_schemas(self) -> dict[str, dict[str, Any]]:
        return {spec.type: spec.json_schema() for spec in self}


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
