"""Progress lines: on a terminal one tqdm line with count, rate and ETA; off when not a TTY."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import struct
import termios

import pytest

from valueharm.core.progress import ENV, enabled, progress


def read_all(fd: int) -> str:
    """Everything written to the pty so far. A pty can hand back one write per read, so a short
    read does not mean the end: read until nothing more arrives for half a second."""
    import select

    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    return out.decode(errors="replace")


def test_off_when_not_a_tty(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    stream = io.StringIO()
    assert not enabled(stream)
    with progress(5, "generate", unit="prompts", stream=stream) as bar:
        bar.update(5)
    assert stream.getvalue() == ""


def test_env_overrides(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setenv(ENV, "1")
    assert enabled(stream)
    monkeypatch.setenv(ENV, "0")
    assert not enabled(stream)


def test_one_line_with_rate_and_eta_on_a_terminal(monkeypatch):
    monkeypatch.delenv(ENV, raising=False)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # a terminal 120 columns wide
    stream = os.fdopen(slave, "w", buffering=1)
    try:
        assert enabled(stream)
        with progress(4, "train qa", unit="steps", stream=stream) as bar:
            for _ in range(4):
                bar.update(1)
        stream.flush()
        text = read_all(master)
    finally:
        stream.close()
        os.close(master)
    final = text.replace("\r\n", "\n").split("\r")[-1].strip()
    assert final.startswith("train qa: 4/4 steps ["), text
    assert "steps/s" in final and "<" in final  # rate, elapsed<remaining
    assert text.count("\n") <= 1  # redrawn in place: one line


def test_judge_rows_shows_progress_when_forced(monkeypatch, capsys):
    from valueharm.evaluation.judges import judge_rows

    monkeypatch.setenv(ENV, "1")
    rows = [{"model": "m", "prompt_id": str(i), "prompt": "p", "response": f"answer {i}"} for i in range(3)]
    judge_rows(rows, "refusal")
    err = capsys.readouterr().err
    assert "judge refusal: 3/3 answers" in err


@pytest.mark.parametrize("flag", ["0", ""])
def test_judge_rows_silent_without_a_terminal(monkeypatch, capsys, flag):
    from valueharm.evaluation.judges import judge_rows

    monkeypatch.setenv(ENV, flag)
    rows = [{"model": "m", "prompt_id": "1", "prompt": "p", "response": "a"}]
    judge_rows(rows, "refusal")
    assert capsys.readouterr().err == ""
