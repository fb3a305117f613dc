"""The four departments (magistratsafdelinger) that station staff in the teams and co-finance them."""

from enum import StrEnum
from typing import Literal, get_args


class Department(StrEnum):
    """Slug values are used in topic names (``oto.department.<slug>``) and token claims."""

    SOCIAL_AND_EMPLOYMENT = "sociale-forhold-og-beskaeftigelse"
    CHILDREN_AND_YOUNG_PEOPLE = "boern-og-unge"
    HEALTH_AND_CARE = "sundhed-og-omsorg"
    CULTURE_AND_CITIZEN_SERVICES = "kultur-og-borgerservice"

    @property
    def danish_name(self) -> str:
        return _DANISH[self]


_DANISH = {
    Department.SOCIAL_AND_EMPLOYMENT: "Sociale Forhold og Beskæftigelse",
    Department.CHILDREN_AND_YOUNG_PEOPLE: "Børn og Unge",
    Department.HEALTH_AND_CARE: "Sundhed og Omsorg",
    Department.CULTURE_AND_CITIZEN_SERVICES: "Kultur og Borgerservice",
}

#: The slugs as a literal type, for event contracts (their JSON Schema is a plain string enum).
DepartmentSlug = Literal["sociale-forhold-og-beskaeftigelse", "boern-og-unge", "sundhed-og-omsorg",
                         "kultur-og-borgerservice"]
assert set(get_args(DepartmentSlug)) == {d.value for d in Department}, "DepartmentSlug drifted"
