"""Each operation's OpenAPI entry says which roles may call it, and it agrees with the matrix.

The roles are read from the routes' own ``require_roles`` dependencies (``shared.openapi``), so the
document cannot drift from the code; this test holds them to the authorisation matrix
(tests/test_authorisation_matrix.py), so neither can drift from the expectation either.
"""

from __future__ import annotations

import pytest

from shared.apidocs import openapi_documents
from shared.auth import ROLE_SCOPE, Role
from shared.openapi import ROLES_EXTENSION
from tests import test_authorisation_matrix as matrix
from tests.authz_support import CALLERS, parse_matrix

TABLES = {"intake": matrix.INTAKE, "casework": matrix.CASEWORK, "referrals": matrix.REFERRALS,
          "finance": matrix.FINANCE}
DOCUMENTS = openapi_documents()


def _passing_roles(row: dict[str, str]) -> list[str]:
    """The roles the matrix lets past function-level authorisation (anything but 401/403)."""
    passing = {c.role for c in CALLERS if c.role is not None and row[c.column] not in ("401", "403")}
    return [role.value for role in Role if role.value in passing]


@pytest.mark.parametrize("service", TABLES)
def test_every_operation_documents_the_roles_the_matrix_lets_through(service: str) -> None:
    document = DOCUMENTS[service]
    mismatches = []
    for key, row in parse_matrix(TABLES[service]).items():
        method, path = key.split(" ", 1)
        operation = document["paths"].get(path, {}).get(method.lower())
        if operation is None or "security" not in operation:
            assert operation is None or ROLES_EXTENSION not in operation, key
            continue
        documented = operation.get(ROLES_EXTENSION)
        if documented != _passing_roles(row):
            mismatches.append(f"{key}: documented {documented}, matrix {_passing_roles(row)}")
    assert mismatches == []


def test_the_description_names_the_roles_and_the_scope_of_team_and_department_tokens() -> None:
    operation = DOCUMENTS["casework"]["paths"]["/v1/families/{family_id}/slice"]["get"]
    for role in operation[ROLES_EXTENSION]:
        assert f"`{role}`" in operation["description"]
    assert f"`team_staff` ({ROLE_SCOPE[Role.TEAM_STAFF]})" in operation["description"]
    assert f"`department_staff` ({ROLE_SCOPE[Role.DEPARTMENT_STAFF]})" in operation["description"]
