"""The stdout/stderr tee: console unchanged, lines captured once, streams restored exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from aim_core.system.log_lines import LineSplitter
from aim_core.system.terminal import STDERR, STDOUT, TerminalCapture

CHILD = textwrap.dedent("""
    import json, sys
    from aim_core.system.log_lines import LineSplitter
    from aim_core.system.terminal import TerminalCapture
    capture = TerminalCapture()
    if sys.argv[2] == "capture":
        capture.start()
    print("starting", flush=True)
    for i in range(0, 101, 25):
        sys.stderr.write(f"\\rprogress {i:3d}%")
        sys.stderr.flush()
    sys.stderr.write("\\n")
    print("warning: to stderr", file=sys.stderr)
    try:
        from tqdm import tqdm
        for _ in tqdm(range(3), desc="tqdm", file=sys.stderr, ascii=True, mininterval=0,
                      bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt}"):
            pass
    except ImportError:
        sys.stderr.write("tqdm: 100%|##########| 3/3\\n")
    print("done, no newline", end="")
    capture.stop()
    splitter = LineSplitter()
    lines = splitter.feed(capture.drain(), 0.0) + splitter.finish()
    with open(sys.argv[1], "w") as f:
        json.dump([[step, text] for step, text, _ in lines], f)
""")


def _child(tmp_path, mode):
    out = tmp_path / f"{mode}.json"
    done = subprocess.run([sys.executable, "-c", CHILD, str(out), mode], capture_output=True,
                          timeout=60, check=True)
    return done.stdout, done.stderr, json.loads(out.read_text())


def test_a_subprocess_has_its_lines_in_order_and_its_console_output_unchanged(tmp_path):
    out_plain, err_plain, nothing = _child(tmp_path, "plain")
    out, err, lines = _child(tmp_path, "capture")
    assert nothing == []
    assert (out, err) == (out_plain, err_plain)
    assert out == b"starting\ndone, no newline"
    assert b"\rprogress   0%\rprogress  25%" in err
    steps = [step for step, _ in lines]
    assert steps == list(range(len(lines)))
    texts = [text for _, text in lines]
    assert texts[:3] == ["starting", "progress 100%", "warning: to stderr"]
    assert texts[3] == "tqdm: 100%|##########| 3/3"
    assert texts[4:] == ["done, no newline"]


def test_streams_are_restored_exactly(capsys):
    had = {name: dict(vars(getattr(sys, name))) for name in ("stdout", "stderr")}
    capture = TerminalCapture()
    capture.start()
    assert "write" in vars(sys.stdout)
    print("captured")
    capture.stop()
    assert {name: dict(vars(getattr(sys, name))) for name in ("stdout", "stderr")} == had
    print("not captured")
    assert [text for _, text in capture.drain()] == ["captured", "\n"]
    assert capsys.readouterr().out == "captured\nnot captured\n"


def test_two_captures_in_one_process_see_each_line_once(capsys):
    first, second = TerminalCapture(), TerminalCapture()
    first.start()
    print("one")
    second.start()
    second.start()  # starting twice changes nothing
    print("two")
    print("err", file=sys.stderr)
    first.stop()
    print("three")
    second.stop()
    print("four")

    def lines(capture):
        splitter = LineSplitter()
        lines = splitter.feed(capture.drain(), 0.0) + splitter.finish()
        return [text for _, text, _ in lines]

    assert lines(first) == ["one", "two", "err"]
    assert lines(second) == ["two", "err", "three"]
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("one\ntwo\nthree\nfour\n", "err\n")
    assert "write" not in vars(sys.stdout)


def test_a_wrapper_installed_after_ours_is_left_in_place(capsys):
    capture = TerminalCapture()
    capture.start()
    ours = sys.stdout.write
    seen = []

    def theirs(data):
        seen.append(data)
        return ours(data)

    sys.stdout.write = theirs
    try:
        print("a")
        capture.stop()
        assert sys.stdout.write is theirs  # not torn off under the other tool
        print("b")
    finally:
        del sys.stdout.write
    assert [text for _, text in capture.drain()] == ["a", "\n"]
    assert seen == ["a", "\n", "b", "\n"]
    assert capsys.readouterr().out == "a\nb\n"


def test_drain_keeps_order_across_streams(capsys):
    capture = TerminalCapture()
    capture.start()
    try:
        sys.stdout.write("o1\n")
        sys.stderr.write("e1\n")
        sys.stdout.write("o2\n")
    finally:
        capture.stop()
    assert capture.drain() == [(STDOUT, "o1\n"), (STDERR, "e1\n"),
                                                       (STDOUT, "o2\n")]
    assert capture.drain() == []


def test_a_forked_child_does_not_keep_capturing(capsys):
    import os

    capture = TerminalCapture()
    capture.start()
    try:
        pid = os.fork()
        if pid == 0:  # the child: streams restored, nothing buffered for the parent's run
            os._exit(0 if "write" not in vars(sys.stdout) and not capture.active else 1)
        _, status = os.waitpid(pid, 0)
    finally:
        capture.stop()
    assert os.waitstatus_to_exitcode(status) == 0


def test_a_stream_replaced_while_capturing_is_captured_by_later_runs_once(capsys):
    import contextlib
    import io

    first = TerminalCapture()
    first.start()
    original = sys.stdout
    redirected = io.StringIO()

    class Forward(io.StringIO):  # a wrapper that also writes into the original stream
        def write(self, data):
            original.write(data)
            return super().write(data)

    forward = Forward()
    with contextlib.redirect_stdout(redirected):
        second = TerminalCapture()
        second.start()  # wraps the new sys.stdout too
        print("into the redirect")
        second.stop()
    with contextlib.redirect_stdout(forward):
        third = TerminalCapture()
        third.start()
        print("forwarded")  # passes through two wrapped streams: captured once
        third.stop()
    first.stop()
    assert "write" not in vars(redirected) and "write" not in vars(forward)
    assert "write" not in vars(sys.stdout)
    texts = {name: [t for _, t in c.drain()] for name, c in
             (("first", first), ("second", second), ("third", third))}
    assert texts["second"] == ["into the redirect", "\n"]
    assert texts["third"] == ["forwarded", "\n"]
    assert texts["first"] == ["into the redirect", "\n", "forwarded", "\n"]
    assert redirected.getvalue() == "into the redirect\n"
    assert capsys.readouterr().out == "forwarded\n"
