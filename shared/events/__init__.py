"""Event contracts: the CloudEvents envelope, the registry and one module per producing service."""

from shared.events.envelope import Envelope, EnvelopeError
from shared.events.registry import REGISTRY, DomainEvent, FamilyEvent, event

__all__ = ["REGISTRY", "DomainEvent", "Envelope", "EnvelopeError", "FamilyEvent", "event"]
