"""README transcripts: the shell sessions in README.md marked `<!-- transcript ... -->`, run again in a
terminal of their width (a pty with TERM=dumb: what a person sees once a command ends, without colours or
redraws), compared with what README shows, and rewritten from a real run.

A marker stands on the line before a block's fence: `<!-- transcript columns=80 -->`, with, optionally,
`setup="COMMAND"` (run first, output not shown), `slurm` (needs the lab cluster) and `slow` (minutes of
training: rewritten on request, not run by the tests). Each block's commands run in a fresh folder holding a
copy of examples/, so `results/NAME` reads as in a user's checkout.

    python -m tests.readme --write            # rewrite every block but the slow ones from real runs
    python -m tests.readme --write --slow     # ... and the slow ones (the mnist5k quest: ~7 min)
"""

from __future__ import annotations

import argparse
import os
import pty
import re
import shlex
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
MARKER = re.compile(r"^<!-- transcript(?P<args>.*?)-->\s*$")


@dataclass
class Step:
    command: str
    output: list[str]


@dataclass
class Transcript:
    first_line: int  # README's line of the first command, 0-based
    last_line: int  # the closing fence's
    columns: int
    setup: str = ""
    slurm: bool = False
    slow: bool = False
    steps: list[Step] = field(default_factory=list)


def parse(text: str) -> list[Transcript]:
    """The marked blocks of a README, each command with the output lines shown under it."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        marker = MARKER.match(line)
        if not marker:
            continue
        if not lines[i + 1].startswith("```"):
            raise ValueError(f"README line {i + 2}: Expected a code fence after the transcript marker")
        options = dict(
            (word.split("=", 1) if "=" in word else (word, "1")) for word in shlex.split(marker["args"])
        )
        block = Transcript(i + 2, i + 2, int(options.get("columns", 80)), options.get("setup", ""))
        block.slurm, block.slow = "slurm" in options, "slow" in options
        j = i + 2
        while not lines[j].startswith("```"):
            if lines[j].startswith("$ "):
                command = lines[j][2:]
                while command.endswith("\\"):
                    j += 1
                    command += "\n" + lines[j]
                block.steps.append(Step(command, []))
            elif block.steps:
                block.steps[-1].output.append(lines[j])
            j += 1
        block.last_line = j
        for step in block.steps:
            while step.output and not step.output[-1].strip():
                step.output.pop()
        found.append(block)
    return found


def render(steps: list[Step]) -> list[str]:
    """A block's lines: each command, its output, and a blank line between commands."""
    lines: list[str] = []
    for k, step in enumerate(steps):
        if k:
            lines.append("")
        lines += ["$ " + step.command.split("\n")[0], *step.command.split("\n")[1:], *step.output]
    return lines


def rewrite(text: str, blocks: list[Transcript]) -> str:
    """The README with these blocks' lines replaced by their steps (blocks in README order)."""
    lines = text.split("\n")
    for block in sorted(blocks, key=lambda b: b.first_line, reverse=True):
        lines[block.first_line : block.last_line] = render(block.steps)
    return "\n".join(lines)


# What differs from run to run however reproducible the training: times, job ids and process ids, and the
# widths of the columns and bars that they set.
_VOLATILE = [
    (re.compile(r"\b\d+:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"\(jobs? [^)]*\)"), "(jobs <ids>)"),
    (re.compile(r"<time>(\s+)\d+(_\d+)?(\s*)$"), r"<time>\1<job>\3"),
    (re.compile(r"took \d+ s \(submit to end\)"), "took <n> s (submit to end)"),  # collect's last line
    (re.compile(r"\d+\.\d+× the estimate"), "<ratio> the estimate"),
    (re.compile(r"━+"), "━"),  # a progress bar
    (re.compile(r"^─+$"), "─"),  # a table's rule
    (re.compile(r"[ \t]+"), " "),
]


def normalized(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = line.strip()
        for pattern, replacement in _VOLATILE:
            line = pattern.sub(replacement, line)
        if line:
            out.append(line)
    return out


def in_terminal(command: str, cwd: Path, columns: int, lines: int = 24) -> tuple[int, list[str]]:
    """A command's exit code and output as a terminal of `columns` shows it once the command has ended."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
    env = {**os.environ, "TERM": "dumb", "COLUMNS": str(columns), "LINES": str(lines)}
    env.pop("HPCJOBS_RESULTS", None)
    proc = subprocess.Popen(
        ["bash", "-c", command], cwd=cwd, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the last writer closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    code = proc.wait()
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return code, [line.rstrip() for line in text.rstrip("\n").split("\n")]


def run(block: Transcript, folder: Path) -> list[Step]:
    """The block's commands run anew in `folder` (given a copy of examples/)."""
    shutil.copytree(REPO / "examples", folder / "examples", dirs_exist_ok=True)
    if block.setup:
        code, output = in_terminal(block.setup, folder, block.columns)
        if code:
            raise RuntimeError(f"setup {block.setup!r} failed ({code}): " + "\n".join(output))
    steps = []
    for step in block.steps:
        _, output = in_terminal(step.command, folder, block.columns)
        steps.append(Step(step.command, [line for line in output if line.strip()]))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description="Rewrite README.md's transcripts from real runs.")
    parser.add_argument("--write", action="store_true", help="rewrite README.md (else: say what differs)")
    parser.add_argument("--slow", action="store_true", help="also the blocks marked slow")
    args = parser.parse_args()
    text = README.read_text()
    done = []
    for block in parse(text):
        if block.slow and not args.slow:
            continue
        with tempfile.TemporaryDirectory() as folder:
            block.steps = run(block, Path(folder))
        done.append(block)
        print(f"ran the transcript at README line {block.first_line + 1}")
    new = rewrite(text, done)
    if args.write:
        README.write_text(new)
    else:
        print("README's transcripts match" if new == text else "README's transcripts differ (--write)")


if __name__ == "__main__":
    main()
