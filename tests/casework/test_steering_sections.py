"""The steering report's sections from the services' answers, without I/O: external funding,
partners' tips and money summed over a few families."""

from __future__ import annotations

from datetime import date

from services.casework import steering

ALLOCATION = {"site_id": "gellerup", "year": 2026, "total_ore": 1_000, "pool_ore": 400,
              "departments": {"sociale-forhold-og-beskaeftigelse": 600}}


def section(report: steering.SteeringReportRead, key: str) -> dict[str, dict[str, object]]:
    return {r.key: r.values for s in report.sections if s.key == key for r in s.rows}


def finished(sheet: steering.Sheet) -> steering.SteeringReportRead:
    return steering.finish(sheet, site_id="gellerup", period_start=date(2026, 1, 1),
                           period_end=date(2026, 12, 31), year=2026, comparison_cohort_id=None)


def test_grants_from_finances_funding_answer_fill_the_funding_section() -> None:
    # finance's GET /v1/funding: per site, each grant's part of the year; one code over two sites adds up.
    grant = {"code": "realdania", "funder": "private-foundation", "pays_for": "operating_cost",
             "amount_ore": 575_000_000}
    sites = [{"site_id": "gellerup", "grants": [grant]}, {"site_id": "viby", "grants": [grant]},
             {"site_id": "tilst", "grants": []}]
    sheet = steering.Sheet()
    steering.add_funding(sheet, steering.funding_rows(sites))
    assert section(finished(sheet), "funding") == {"realdania": {"amount_ore": 1_150_000_000}}
    empty = steering.Sheet()
    steering.add_funding(empty, steering.funding_rows([{"site_id": "tilst", "grants": []}]))
    assert section(finished(empty), "funding") == {}


def test_families_from_partners_tips_are_counted_with_small_numbers_withheld() -> None:
    sheet = steering.Sheet()
    steering.add_partner_tips(sheet, {"identified": 7, "contacted": 6, "enrolled": 2})
    assert section(finished(sheet), "partner_tips") == {
        "identified": {"families": 7}, "contacted": {"families": 6}, "enrolled": {"families": "<5"}}


def test_money_summed_over_fewer_than_five_families_is_withheld_with_their_count() -> None:
    area = {"families": 3, "baseline_per_year_ore": 900, "current_per_year_ore": 300,
            "savings_per_year_ore": 600, "average_per_family_per_year_ore": 200}
    savings = {"areas": [{**area, "area": "income_support"}], "total": {**area, "area": "total"},
               "over_years_ore": 2_400, "pool_per_year_ore": 400, "pool_over_years_ore": 1_600,
               "break_even": True, "families_to_break_even": 2}
    sheet = steering.Sheet()
    steering.add_savings(sheet, savings)
    report = finished(sheet)
    assert section(report, "savings")["total"] == dict.fromkeys(
        ("families", "baseline_per_year_ore", "current_per_year_ore", "savings_per_year_ore",
         "average_per_family_per_year_ore"), "<5")
    # The råderum is the municipality's own figure; what the families saved is withheld.
    assert section(report, "break_even") == {
        "over_years_ore": {"amount_ore": "<5", "value": None},
        "pool_per_year_ore": {"amount_ore": 400, "value": None},
        "pool_over_years_ore": {"amount_ore": 1_600, "value": None},
        "break_even": {"amount_ore": None, "value": "<5"},
        "families_to_break_even": {"amount_ore": None, "value": "<5"}}
