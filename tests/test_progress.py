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
