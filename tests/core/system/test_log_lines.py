"""Terminal writes become numbered lines in their final on-screen state."""

from __future__ import annotations

from aim_core.system.log_lines import MAX_PARTIAL, LineSplitter, render
from aim_core.system.terminal import STDERR, STDOUT


def texts(lines):
    return [(step, text) for step, text, _ in lines]


def test_render_keeps_plain_text_and_collapses_rewrites():
    assert render("plain  ") == ("plain  ", 0)
    assert render("abcdef\rxy") == ("xycdef", 0)  # a terminal overwrites, it does not erase
    assert render("long text\r\x1b[Kab") == ("ab", 0)
    assert render("bar 10%\r       \rdone") == ("done", 0)
    assert render("ok\r") == ("ok", 0)  # CRLF line endings
    assert render("x\x1b[2A") == ("x", -2)
    assert render("\x1b[31mred\x1b[0m") == ("\x1b[31mred\x1b[0m", 0)  # colours are kept


def test_lines_are_numbered_in_the_order_they_end_and_streams_do_not_mix():
    splitter = LineSplitter()
    lines = splitter.feed([
        (STDOUT, "hel"), (STDERR, "warning: x\n"), (STDOUT, "lo\nsecond\n"),
        (STDOUT, b"bytes \xc3\xa9\n")], 1.5)
    assert texts(lines) == [(0, "warning: x"), (1, "hello"), (2, "second"), (3, "bytes é")]
    assert {t for _, _, t in lines} == {1.5}


def test_a_progress_bar_is_one_line_in_its_final_state():
    splitter = LineSplitter(first_line=10)
    writes = [(STDERR, f"\r{p:3d}%|{'#' * (p // 10):<10}|") for p in range(0, 101, 5)]
    assert splitter.feed(writes, 1.0) == []
    assert texts(splitter.feed([(STDERR, "\n"), (STDOUT, "done\n")], 2.0)) == [
        (10, "100%|##########|"), (11, "done")]


def test_live_lines_show_the_unfinished_line_and_are_replaced_when_it_ends():
    splitter = LineSplitter()
    splitter.feed([(STDOUT, "epoch 1\n"), (STDERR, "\r 30%")], 1.0)
    assert texts(splitter.live_lines()) == [(1, " 30%")]
    assert splitter.live_lines() == []  # unchanged since the last call
    splitter.feed([(STDERR, "\r 60%")], 2.0)
    assert texts(splitter.live_lines()) == [(1, " 60%")]
    assert texts(splitter.feed([(STDERR, "\r100%\n")], 3.0)) == [(1, "100%")]
    assert splitter.live_lines() == []


def test_finish_ends_unfinished_lines_and_blanks_a_cleared_live_line():
    splitter = LineSplitter()
    splitter.feed([(STDOUT, "no newline at the end"), (STDERR, "\rbar")], 1.0)
    assert texts(splitter.live_lines()) == [(0, "no newline at the end"), (1, "bar")]
    splitter.feed([(STDERR, "\r\x1b[K")], 2.0)  # tqdm(leave=False) clears its bar
    assert texts(splitter.finish()) == [(0, "no newline at the end"), (1, "")]
    assert splitter.finish() == []


def test_cursor_up_moves_back_to_an_earlier_line_as_aim_does():
    splitter = LineSplitter()
    lines = splitter.feed([(STDOUT, "a\nb\n"), (STDOUT, "\x1b[1Aupdated b\n")], 1.0)
    assert texts(lines) == [(0, "a"), (1, "b"), (1, "updated b")]
    lines = splitter.feed([(STDOUT, "\x1b[9Atop\n")], 2.0)
    assert texts(lines) == [(0, "top")]  # never above the run's first line


def test_long_rewritten_lines_stay_small_and_endless_lines_are_cut():
    splitter = LineSplitter()
    for i in range(5000):
        splitter.feed([(STDERR, f"\rstep {i:05d} " + "=" * 50)], float(i))
    assert texts(splitter.live_lines()) == [(0, "step 04999 " + "=" * 50)]
    assert splitter._partial[STDERR].size < 10_000
    lines = splitter.feed([(STDOUT, "x" * 1000)] * (MAX_PARTIAL // 1000 + 1), 0.0)
    assert len(lines) == 1 and len(lines[0][1]) > MAX_PARTIAL


def test_huge_cursor_moves_are_cut_as_a_screen_would_cut_them():
    splitter = LineSplitter()
    lines = splitter.feed([(STDOUT, "a\x1b[99999999Cb\n"),  # forward beyond any screen
                           (STDOUT, "x\x1b[" + "9" * 5000 + "Cy\n"),  # a count no int takes
                           (STDOUT, "z" + "\x1b[4000C" * 1000 + "w\n"),  # many moves
                           (STDOUT, "down\x1b[99999999B\n"), (STDOUT, "next\n")], 0.0)
    assert [len(text) for _, text, _ in lines[:3]] == [2 + (1 << 12)] * 2 + [1 + (1 << 16)]
    assert lines[0][1].startswith("a ") and lines[0][1].endswith(" b")
    assert [step for step, _, _ in lines] == [0, 1, 2, 3 + (1 << 12), 4 + (1 << 12)]
