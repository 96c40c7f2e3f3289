"""``swain_cli interactive`` driven in a real pseudo-terminal: the
questionary wizard is answered key by key, it refuses bad answers, prints the
equivalent ``swain_cli gen`` command and, when confirmed, generates the SDK."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import shlex
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SWAIN_CLI = str(Path(sys.executable).parent / "swain_cli")
ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][0-9A-Za-z]|\x1b[=>78]")
ENTER, SPACE, DOWN, CLEAR_LINE, CTRL_C = "\r", " ", "\x1b[B", "\x15", "\x03"



class Terminal:
    """A command on a pseudo-terminal, with expect/send in the style of pexpect."""

    def __init__(self, argv: list[str], cwd: Path) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        env = {**os.environ, "TERM": "xterm", "COLUMNS": "200", "LINES": "40"}
        env.pop("PROMPT_TOOLKIT_NO_CPR", None)
        self.process = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                        env=env, start_new_session=True)
        os.close(slave)
        self.fd = master
        self.raw = b""
        self.mark = 0
        self.answered = 0

    @property
    def text(self) -> str:
        """Everything shown so far, without escape sequences and carriage returns."""
        return ANSI.sub("", self.raw.decode("utf-8", "replace")).replace("\r", "")

    def _read(self, timeout: float) -> bool:
        """Read what is there within ``timeout``; False once the other side is closed."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: every writer is gone
            return False
        self.raw += chunk
        # Answer cursor-position requests as a terminal does (cursor on the top row);
        # prompt_toolkit draws the validation toolbar only once it knows the height.
        requests = self.raw.count(b"\x1b[6n")
        while self.answered < requests:
            self.send("\x1b[1;1R")
            self.answered += 1
        return bool(chunk)

    def expect(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        """Wait for ``pattern`` after the previous match; fail with the screen if it never comes."""
        deadline = time.monotonic() + timeout
        while True:
            match = re.compile(pattern).search(self.text, self.mark)
            if match:
                self.mark = match.end()
                return match
            open_ = self._read(0.2)
            if time.monotonic() > deadline or (not open_ and self.process.poll() is not None):
                raise AssertionError(f"{pattern!r} not shown; the terminal shows:\n"
                                     f"{self.text[self.mark:][-3000:]}")

    def send(self, keys: str) -> None:
        os.write(self.fd, keys.encode())

    def finish(self, timeout: float = 60) -> int:
        """Read to the end of the output; the command's exit status."""
        deadline = time.monotonic() + timeout
        while self._read(0.2) and time.monotonic() < deadline:
            pass
        return self.process.wait(timeout=max(1.0, deadline - time.monotonic()))

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.fd)


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    term = Terminal([SWAIN_CLI, "interactive"], cwd=tmp_path)
    yield term
    term.close()


def answer_file_wizard(term: Terminal, spec: Path, output: Path) -> None:
    """Answer every question for ``-i spec -l python -o output -p packageName=wizard_api``,
    giving a bad answer first wherever the wizard validates."""
    term.expect(r"Where is the OpenAPI document\?")
    term.send(ENTER)  # the first choice, a file
    term.expect(r"Spec file \(json or yaml\):")
    term.send(str(spec.parent / "missing.json") + ENTER)
    term.expect(r"no such file: .*missing\.json")
    term.send(CLEAR_LINE + str(spec) + ENTER)
    term.expect(r"Languages \(space selects, enter confirms\):")
    term.send(ENTER)
    term.expect(r"select at least one language")
    term.send(SPACE + ENTER)  # python, the first language
    term.expect(r"Output folder:")
    term.send(CLEAR_LINE + str(output) + ENTER)
    term.expect(r"Package name \(blank for the generator's default\):")
    term.send("9lives" + ENTER)
    term.expect(r"letters, digits and underscores")
    term.send(CLEAR_LINE + "wizard_api" + ENTER)


def expected_command(spec: Path, output: Path) -> str:
    return shlex.join(["swain_cli", "gen", "-i", str(spec), "-l", "python", "-o", str(output),
                       "-p", "packageName=wizard_api"])


def test_declining_prints_the_command_and_generates_nothing(terminal: Terminal, spec_file: Path,
                                                              tmp_path: Path) -> None:
    output = tmp_path / "sdks"
    answer_file_wizard(terminal, spec_file, output)
    terminal.expect(r"Equivalent command:\n +" + re.escape(expected_command(spec_file, output)))
    terminal.expect(r"Run it now\?")
    terminal.send("n")
    terminal.expect(r"Not run\.")
    assert terminal.finish() == 0
    assert not output.exists()


def test_server_source_and_bad_url(terminal: Terminal, tmp_path: Path) -> None:
    terminal.expect(r"Where is the OpenAPI document\?")
    terminal.send(DOWN + ENTER)
    terminal.expect(r"Server URL:")
    terminal.send(CLEAR_LINE + "ftp://example.com" + ENTER)
    terminal.expect(r"expected http\(s\)://host")
    terminal.send(CLEAR_LINE + "http://127.0.0.1:9" + ENTER)
    terminal.expect(r"Languages")
    terminal.send(DOWN + SPACE + ENTER)  # typescript only
    terminal.expect(r"Output folder:")
    terminal.send(ENTER)  # the default
    terminal.expect(r"Package name")
    terminal.send(ENTER)
    command = "swain_cli gen --swain-base http://127.0.0.1:9 -l typescript -o sdks"
    terminal.expect(r"Equivalent command:\n +" + re.escape(command) + r"\n")
    terminal.expect(r"Run it now\?")
    terminal.send("n")
    terminal.expect(r"Not run\.")
    assert terminal.finish() == 0
    assert not (tmp_path / "sdks").exists()


def test_ctrl_c_cancels(terminal: Terminal) -> None:
    terminal.expect(r"Where is the OpenAPI document\?")
    terminal.send(CTRL_C)
    terminal.expect(r"cancelled")
    assert terminal.finish() == 1
    assert "Equivalent command" not in terminal.text


@pytest.mark.slow
def test_confirming_generates_the_sdk(terminal: Terminal, spec_file: Path,
                                      tmp_path: Path) -> None:
    output = tmp_path / "sdks"
    answer_file_wizard(terminal, spec_file, output)
    terminal.expect(r"Equivalent command:\n +" + re.escape(expected_command(spec_file, output)))
    terminal.expect(r"Run it now\?")
    terminal.send("y")
    terminal.expect(r"python → " + re.escape(str(output / "python")), timeout=180)
    assert terminal.finish() == 0
    package = output / "python" / "wizard_api"
    assert "NotesApi" in (package / "__init__.py").read_text(encoding="utf-8")
    assert "def list_notes(" in (package / "api" / "notes_api.py").read_text(encoding="utf-8")
    assert (package / "models" / "note.py").is_file()
    assert not (output / "typescript").exists()
