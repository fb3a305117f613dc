"""The runner's restart backoff: quick at first, doubling to a ceiling, quick again after a stable run."""

from __future__ import annotations

from shared.supervisor import MAX_DELAY, STABLE_AFTER, Backoff


def test_restarts_back_off_doubling_up_to_the_ceiling_and_reset_after_a_stable_run() -> None:
    backoff = Backoff()
    delays = [backoff.next_delay(uptime=1) for _ in range(10)]
    assert delays[:4] == [0.5, 1, 2, 4]
    assert max(delays) == MAX_DELAY and delays == sorted(delays)
    assert backoff.next_delay(uptime=STABLE_AFTER) == 0.5
