"""Danish words for the codes the department topic carries (the staff's language; code stays English)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.events.registry import REGISTRY

AARHUS = ZoneInfo("Europe/Copenhagen")

EVENTS = {
    "family-enrolled": "Indskrevet", "member-added": "Nyt familiemedlem", "family-exited": "Udskrevet",
    "consent-given": "Samtykke givet", "consent-revoked": "Samtykke trukket tilbage",
    "makkerpar-assigned": "Makkerpar tildelt", "makkerpar-ended": "Makkerpar ophørt",
    "goal-changed": "Mål ændret", "escalation-raised": "Eskalering",
    "job-match-decided": "Jobmatch afgjort", "placement-started": "Ansættelse startet",
    "employer-follow-up-recorded": "Opfølgning hos arbejdsgiver", "leisure-job-recorded": "Fritidsjob",
    "fritidspas-used": "Fritidspas brugt", "employment-status-recorded": "Beskæftigelsesstatus",
    "school-absence-recorded": "Skolefravær", "wellbeing-assessed": "Trivselsmåling",
    "referral-sent": "Henvisning modtaget", "referral-accepted": "Henvisning accepteret",
    "referral-declined": "Henvisning afvist", "referral-started": "Forløb startet",
    "referral-completed": "Forløb afsluttet", "referral-cancelled": "Henvisning annulleret",
    "referral-put-on-hold": "Henvisning sat i bero", "referral-resumed": "Henvisning genoptaget",
    "referral-overdue": "Frist overskredet", "referral-status-noted": "Status noteret",
}
STATES = {"draft": "Kladde", "sent": "Modtaget", "accepted": "Accepteret", "in_progress": "I gang",
          "completed": "Afsluttet", "declined": "Afvist", "cancelled": "Annulleret", "on_hold": "I bero"}
FAMILY_STATES = {"consented": "Samtykke", "enrolled": "Indskrevet", "exited": "Udskrevet"}
ROLES = {"mother": "mor", "father": "far", "child": "barn", "other_adult": "anden voksen",
         "parent": "forælder", "adult": "voksen"}
PRIORITIES = {"routine": "Normal", "urgent": "Haster"}
CHARGES = {"allocation": "Fordeling", "settlement": "Afregning", "correction": "Korrektion"}
FIELDS = {"person_id": "person", "role": "rolle", "birth_year": "fødselsår", "state": "status",
          "offer_code": "tilbud", "priority": "prioritet", "due_at": "frist", "at": "tidspunkt",
          "reason_code": "årsag", "outcome_code": "resultat", "reason": "årsag", "departments": "afdelinger",
          "expires_on": "udløber", "consent_id": "samtykke", "life_area": "livsområde", "goal_id": "mål",
          "achievement": "opfyldelse", "score": "score", "term": "termin", "absence_percent": "fravær %",
          "status": "status", "since": "siden", "staff_ids": "medarbejdere", "disciplines": "fagligheder",
          "step": "trin", "referral_id": "henvisning", "target_department": "afdeling",
          "members": "medlemmer", "member": "medlem"}


def event_label(event_type: str) -> str:
    name = REGISTRY.spec(event_type).name if event_type in REGISTRY else event_type
    return EVENTS.get(name, name)


def when(value: Any) -> str:
    """A time as Aarhus staff read it (local time), a date as a date."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if isinstance(value, datetime):
        return value.astimezone(AARHUS).strftime("%d-%m-%Y %H:%M")
    if isinstance(value, date):
        return value.strftime("%d-%m-%Y")
    return "" if value is None else str(value)


def kroner(ore: int) -> str:
    """Øre as Danish kroner: 1.234.567,89 kr."""
    whole, part = divmod(abs(ore), 100)
    text = f"{whole:,}".replace(",", ".") + f",{part:02d} kr."
    return f"-{text}" if ore < 0 else text


def detail(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The fields of a timeline entry as label/value pairs (codes as they are, ids shortened)."""
    pairs = []
    for key, value in data.items():
        if value is None or value == []:
            continue
        if key == "state":
            shown = STATES.get(str(value), str(value))
        elif key == "priority":
            shown = PRIORITIES.get(str(value), str(value))
        elif isinstance(value, list):
            shown = ", ".join(_short(v) for v in value)
        elif isinstance(value, dict):
            shown = ", ".join(f"{FIELDS.get(k, k)} {_short(v)}" for k, v in value.items())
        elif key in {"at", "due_at"}:
            shown = when(value)
        else:
            shown = _short(value)
        pairs.append((FIELDS.get(key, key), shown))
    return pairs


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(_short(v) for k, v in value.items() if k != "person_id")
    text = "" if value is None else str(value)
    if len(text) == 36 and text.count("-") == 4:
        return text[:8]
    return ROLES.get(text, text)
