"""The receiver's accounting: loss, duplicates, reordering and the longest gap."""

from __future__ import annotations

from lab.traffic import HEADER, MAGIC, Recorder


def pkt(stream: int, seq: int) -> bytes:
    return HEADER.pack(MAGIC, stream, seq, 0) + b"\0" * 8


def test_report_counts_everything() -> None:
    rec = Recorder()
    ms = 1_000_000
    arrivals = [(0, 0), (1, 1), (3, 2), (2, 3), (3, 4), (5, 40), (6, 41)]  # (seq, ms)
    for seq, t in arrivals:
        rec.record(pkt(7, seq), "239.1.1.1", t * ms)
    rec.record(b"junk", "239.1.1.1", 50 * ms)
    rec.record(b"XXXX" + pkt(7, 1)[4:], "239.1.1.1", 50 * ms)
    (rep,) = rec.report(expected={7: 9})
    assert rep.received == 6  # 0,1,2,3,5,6
    assert rep.duplicates == 1  # the second 3
    assert rep.reordered == 1  # 2 after 3
    assert rep.lost == 3  # 4, 7, 8 never came
    # gaps run between arrivals of new data: the duplicate at 4 ms does not end one
    assert rep.longest_gap_ms == 37.0 and rep.longest_gap_at_ns == 40 * ms
    assert (rep.first_seq, rep.last_seq) == (0, 6)
    assert rec.malformed == 2


def test_a_stream_that_never_arrived_is_all_lost() -> None:
    (rep,) = Recorder().report(expected={3: 100})
    assert (rep.received, rep.lost) == (0, 100)
