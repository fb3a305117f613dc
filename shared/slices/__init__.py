"""The department slice policy, in one place: the mechanism and every producing service's rules."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from shared.slices.policy import OWN_DEPARTMENT, SlicePolicy, SliceRule, when

__all__ = ["OWN_DEPARTMENT", "SlicePolicy", "SliceRule", "default_policy", "when"]


@cache
def default_policy() -> SlicePolicy:
    """All rules: each module ``shared.slices.<service>`` exports ``RULES``."""
    rules: list[SliceRule] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name != "policy":
            rules.extend(importlib.import_module(f"{__name__}.{info.name}").RULES)
    return SlicePolicy(rules)
