from __future__ import annotations

from workers.broker.wire import Done, decode, encode
from workers.engine.generation import _StopScanner


def feed_all(scanner: _StopScanner, pieces: list[str]) -> tuple[str, bool]:
    out = []
    for piece in pieces:
        text, stopped = scanner.feed(piece)
        out.append(text)
        if stopped:
            return "".join(out), True
    return "".join(out) + scanner.flush(), False


def test_it_cuts_at_a_stop_string_split_across_pieces() -> None:
    assert feed_all(_StopScanner(("END",)), ["hello E", "N", "D more"]) == ("hello ", True)


def test_it_releases_a_false_start() -> None:
    assert feed_all(_StopScanner(("END",)), ["hello E", "N", "x"]) == ("hello ENx", False)


def test_the_earliest_of_several_stops_wins() -> None:
    scanner = _StopScanner(("b", "a"))
    assert feed_all(scanner, ["xxab"]) == ("xx", True)
    assert scanner.matched == "a"


def test_it_names_the_stop_string_that_ended_the_text() -> None:
    scanner = _StopScanner(("END", "STOP"))
    assert feed_all(scanner, ["hello ST", "OP and END"]) == ("hello ", True)
    assert scanner.matched == "STOP"
    unmatched = _StopScanner(("END",))
    feed_all(unmatched, ["no end here"])
    assert unmatched.matched is None


def test_the_done_event_carries_the_stop_string_across_the_wire() -> None:
    assert decode(encode(Done("stop", stop_sequence="END"))) == Done("stop", stop_sequence="END")
    assert "stop_sequence" not in encode(Done("stop"))  # only when one ended the answer


def test_without_stops_everything_passes_at_once() -> None:
    scanner = _StopScanner(())
    assert scanner.feed("abc") == ("abc", False)
