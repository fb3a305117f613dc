"""Intake use cases, one module per use case (as casework's): sites, households, outreach,
consents, enrolment and the register import. Each writes and flushes; the entrypoint commits
(HTTP via Idempotency.run). The use cases are re-exported here, so callers say ``service.enrol``.
"""

from services.intake.service.consents import (
    expire_consents,
    give_consent,
    list_consents,
    read_consent,
    renew_consent,
    revoke_consent,
)
from services.intake.service.enrolment import add_member, enrol, exit_family
from services.intake.service.households import (
    check_site,
    create_household,
    get_household,
    get_household_site,
    read_household,
    require_site_access,
    rescreen,
    update_member,
)
from services.intake.service.outreach import funnel, record_outreach
from services.intake.service.register_import import import_register, import_scope
from services.intake.service.sites import list_sites, seed_sites, upsert_site

__all__ = [
    "add_member",
    "check_site",
    "create_household",
    "enrol",
    "exit_family",
    "expire_consents",
    "funnel",
    "get_household",
    "get_household_site",
    "give_consent",
    "import_register",
    "import_scope",
    "list_consents",
    "list_sites",
    "read_consent",
    "read_household",
    "record_outreach",
    "renew_consent",
    "require_site_access",
    "rescreen",
    "revoke_consent",
    "seed_sites",
    "update_member",
    "upsert_site",
]
