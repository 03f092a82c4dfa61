"""sync's progress bar: labelled with what it counts, with rate and ETA, each stage's line ended."""

from __future__ import annotations

import io

from receiver.cli.progress import ProgressBar


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_each_stage_has_a_labelled_line_with_rate_and_eta_and_every_line_ends() -> None:
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(out, width=10, clock=clock)
    bar("departments", 0, 0)
    clock.now += 2
    bar("departments", 50, 50)
    bar("members", 0, 400)
    clock.now += 4
    bar("members", 100, 400)
    bar.close()
    lines = out.getvalue().split("\n")
    assert lines[-1] == ""  # the last line is ended
    departments, members = lines[0].rsplit("\r", 1)[1], lines[1].rsplit("\r", 1)[1]
    assert departments.strip() == "departments  [##########] 50/50 departments found  25.0/s  in 0:02"
    assert members.strip() == "member lists [##--------] 100/400 departments listed  25.0/s  ETA 0:12"


def test_redraws_at_most_ten_times_a_second_but_always_the_last() -> None:
    out, clock = io.StringIO(), Clock()
    bar = ProgressBar(out, width=10, clock=clock)
    for done in range(1, 11):
        clock.now += 0.01
        bar("members", done, 10)
    assert out.getvalue().count("\r") == 2  # the first and the finished one
