"""The fault layer every emulator shares (core/emulation.py): seeded, counted, bursts of exactly their length."""

from __future__ import annotations

from storesync.core.emulation import Faults


def test_the_same_seed_gives_the_same_faults_and_bursts_leave_the_5xx_sequence_alone() -> None:
    plain = Faults(error_rate=0.3, truncate_rate=0.2, seed=5)
    bursty = Faults(error_rate=0.3, truncate_rate=0.2, seed=5, burst_rate=0.2, burst_length=4)
    again = Faults(error_rate=0.3, truncate_rate=0.2, seed=5, burst_rate=0.2, burst_length=4)
    draws = [plain.draw() for _ in range(300)]
    assert draws == [bursty.draw() for _ in range(300)]
    assert [bursty.throttled() for _ in range(300)] == [again.throttled() for _ in range(300)]
    assert {d[0] for d in draws} == {None, 500, 502, 503}


def test_bursts_refuse_runs_of_exactly_burst_length_requests_and_are_counted() -> None:
    faults = Faults(seed=2, burst_rate=0.1, burst_length=3)
    refused = [faults.throttled() for _ in range(2000)]
    runs, current = [], 0
    for hit in refused + [False]:
        if hit:
            current += 1
        elif current:
            runs.append(current)
            current = 0
    assert runs and all(r % 3 == 0 for r in runs)  # back-to-back bursts join; each is 3 long
    assert faults.injected["429"] == sum(refused)


def test_counts_name_what_reached_the_client_and_off_stops_everything() -> None:
    faults = Faults(error_rate=0.5, truncate_rate=0.5, slow_rate=0.5, seed=1)
    draws = [faults.draw() for _ in range(400)]
    assert faults.injected["5xx"] == sum(1 for d in draws if d[0])
    assert faults.injected["truncated"] == sum(1 for d in draws if d[0] is None and d[1])  # a 5xx has no body to cut
    assert faults.injected["slow"] == sum(1 for d in draws if d[2])
    faults.off()
    assert all(faults.draw() == (None, False, False) for _ in range(100))
    assert not any(faults.throttled() for _ in range(100))
