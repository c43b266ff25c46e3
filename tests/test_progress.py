"""kser.progress: a log gets whole lines, a terminal one redrawn line, and the last count always shows."""

import io

from kser.progress import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_the_first_and_final_lines_only_within_five_seconds():
    stream = io.StringIO()
    progress = Progress(10, "build-records", stream=stream)
    for _ in range(10):
        progress.update()
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("build-records [==")
    assert "1/10 clips" in lines[0] and "10/10 clips" in lines[1] and "ETA 0:00" in lines[1]
    assert "[" + "=" * 24 + "]" in lines[1]


def test_a_terminal_gets_one_redrawn_line_ended_on_close():
    stream = _Terminal()
    progress = Progress(3, "train", unit="steps", stream=stream)
    for _ in range(3):
        progress.update()
    progress.close()
    text = stream.getvalue()
    assert text.startswith("\rtrain [") and text.endswith("\n") and text.count("\n") == 1
    assert "3/3 steps" in text.split("\r")[-1]


def test_no_rate_or_eta_until_measured_past_the_first_item(monkeypatch):
    """The first item's time is start-up: a rate from it alone said "ETA 49:44" for a 7 s build."""
    from kser import progress as progress_module

    now = [0.0]
    monkeypatch.setattr(progress_module.time, "monotonic", lambda: now[0])
    stream = io.StringIO()
    progress = Progress(36, "build-records", stream=stream)
    for at, count in ((30.0, 1), (35.0, 1), (36.0, 3), (37.0, 1)):  # 30 s of start-up, then fast (log: a line per 5 s)
        now[0] = at
        progress.update(count)
    lines = stream.getvalue().splitlines()
    assert lines == ["build-records [                        ] 1/36 clips", "build-records [=                       ] 2/36 clips"]
    now[0] = 40.0
    progress.update()  # 6 items past the first in 10 s: 0.6 clips/s, 29 left
    assert stream.getvalue().splitlines()[-1].endswith("7/36 clips  0.6 clips/s  ETA 0:48")
