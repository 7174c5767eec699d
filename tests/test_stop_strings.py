from __future__ import annotations

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
    assert feed_all(_StopScanner(("b", "a")), ["xxab"]) == ("xx", True)


def test_without_stops_everything_passes_at_once() -> None:
    scanner = _StopScanner(())
    assert scanner.feed("abc") == ("abc", False)
