"""The steering report's small-number rule: counts of 1–4 read "<5", and nothing shown lets a
reader work one out again — tried by an attacker that solves every "total = sum of parts" the
report states (exact linear algebra over the shown figures) and uses that a withheld count is at
least 1 (zero is shown)."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.casework.suppression import Cell, Group, suppress


def share(cells: dict[str, Cell], groups: list[Group], key: str, numerator: int, denominator: int) -> None:
    """A share as the report builds it: counted, of, the hidden rest, and the derived per cent."""
    cells[f"{key}.n"] = Cell(f"{key}.n", numerator, counts=True)
    cells[f"{key}.d"] = Cell(f"{key}.d", denominator, counts=True)
    cells[f"{key}.rest"] = Cell(f"{key}.rest", denominator - numerator, counts=True, hidden=True)
    percent = None if not denominator else Decimal(100 * numerator) / denominator
    cells[f"{key}.pct"] = Cell(f"{key}.pct", percent, depends_on=(f"{key}.n", f"{key}.d"))
    groups.append(Group(f"{key}.d", (f"{key}.n", f"{key}.rest")))


def recovered(cells: dict[str, Cell], groups: list[Group], withheld: frozenset[str]) -> set[str]:
    """The withheld cells an attacker can compute exactly from what is shown."""
    unknown = sorted(k for k, c in cells.items() if k in withheld or c.hidden)
    index = {k: i for i, k in enumerate(unknown)}
    rows: list[list[Fraction]] = []
    found: set[str] = set()
    for group in groups:
        row = [Fraction(0)] * (len(unknown) + 1)
        for key, sign in [(group.total, 1), *((p, -1) for p in group.parts)]:
            if key in index:
                row[index[key]] += sign
            else:
                row[-1] -= sign * Fraction(int(cells[key].value or 0))
        rows.append(row)
        # Bound attack: k withheld counts (each ≥ 1) known to sum to k are all 1.
        terms = [(k, row[i]) for k, i in index.items() if row[i]]
        if terms and all(k in withheld and not cells[k].hidden for k, _ in terms):
            signs = {c for _, c in terms}
            if len(signs) == 1 and row[-1] * next(iter(signs)) == len(terms):
                found |= {k for k, _ in terms}
    # Gaussian elimination: a variable alone in a reduced row is determined.
    pivot_row = 0
    for column in range(len(unknown)):
        pivot = next((r for r in range(pivot_row, len(rows)) if rows[r][column]), None)
        if pivot is None:
            continue
        rows[pivot_row], rows[pivot] = rows[pivot], rows[pivot_row]
        lead = rows[pivot_row][column]
        rows[pivot_row] = [v / lead for v in rows[pivot_row]]
        for r in range(len(rows)):
            if r != pivot_row and rows[r][column]:
                factor = rows[r][column]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[pivot_row], strict=True)]
        pivot_row += 1
    for row in rows:
        nonzero = [i for i, v in enumerate(row[:-1]) if v]
        if len(nonzero) == 1:
            found.add(unknown[nonzero[0]])
    return {k for k in found if k in withheld}


small_or_not = st.one_of(st.integers(0, 6), st.integers(0, 60))


@st.composite
def reports(draw: st.DrawFn) -> tuple[dict[str, Cell], list[Group]]:
    """Tables as the report has them: sites adding up to all sites, some with their own parts
    (a total that is itself a part), and shares with their hidden rests."""
    cells: dict[str, Cell] = {}
    groups: list[Group] = []
    sites = draw(st.lists(small_or_not, min_size=1, max_size=6))
    for i, value in enumerate(sites):
        cells[f"site{i}"] = Cell(f"site{i}", value, counts=True)
        if value and draw(st.booleans()):
            cut = draw(st.integers(0, value))
            cells[f"site{i}.a"] = Cell(f"site{i}.a", cut, counts=True)
            cells[f"site{i}.b"] = Cell(f"site{i}.b", value - cut, counts=True)
            groups.append(Group(f"site{i}", (f"site{i}.a", f"site{i}.b")))
    cells["all"] = Cell("all", sum(sites), counts=True)
    groups.append(Group("all", tuple(f"site{i}" for i in range(len(sites)))))
    for j in range(draw(st.integers(0, 3))):
        denominator = draw(small_or_not)
        share(cells, groups, f"m{j}", draw(st.integers(0, denominator)), denominator)
    return cells, groups


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(reports())
def test_no_withheld_cell_can_be_recovered_from_the_others(
        report: tuple[dict[str, Cell], list[Group]]) -> None:
    cells, groups = report
    withheld = suppress(cells, groups)
    assert {k for k, c in cells.items() if c.counts and 0 < (c.value or 0) < 5} <= withheld
    assert recovered(cells, groups, withheld) == set()
    assert all(k in withheld for k, c in cells.items() if set(c.depends_on) & withheld)
    assert not any(cells[k].value == 0 for k in withheld if cells[k].counts)


def test_a_share_of_a_small_number_is_withheld_with_its_count() -> None:
    cells: dict[str, Cell] = {}
    groups: list[Group] = []
    share(cells, groups, "job", 3, 20)
    assert suppress(cells, groups) == {"job.n", "job.pct"}


def test_a_share_that_leaves_few_out_is_withheld_too() -> None:
    # 18 of 20 tells that 2 are not in a job: the rest is protected, so the 18 and the share go.
    cells: dict[str, Cell] = {}
    groups: list[Group] = []
    share(cells, groups, "job", 18, 20)
    assert suppress(cells, groups) == {"job.rest", "job.n", "job.pct"}


def test_a_small_site_takes_the_next_smallest_with_it_and_zero_is_shown() -> None:
    cells = {k: Cell(k, v, counts=True) for k, v in (("a", 12), ("b", 3), ("c", 40), ("d", 0), ("all", 55))}
    assert suppress(cells, [Group("all", ("a", "b", "c", "d"))]) == {"a", "b"}


def test_two_ones_are_not_enough_when_the_total_gives_them_away() -> None:
    cells = {k: Cell(k, v, counts=True) for k, v in (("a", 1), ("b", 1), ("c", 30), ("all", 32))}
    assert suppress(cells, [Group("all", ("a", "b", "c"))]) == {"a", "b", "c"}
