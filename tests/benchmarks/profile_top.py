"""The top entries of a py-spy profile, as text for a benchmark report.

    py-spy record -f raw -o prof.txt --pid PID --duration 30
    python -m tests.benchmarks.profile_top prof.txt [--top 12]

``-f raw`` writes collapsed stacks (``frame;frame;... count``). This prints the
share of samples in which a function is anywhere on the stack (inclusive) and the
share in which it is the innermost frame (self), the two views a flame graph
shows, in a form that fits a Markdown report. Samples whose innermost frame is a
wait (the event loop's selector, an idle worker thread) are counted as idle and left
out of the shares, so the figures are shares of busy time. Record with ``--gil`` to
count only what held the interpreter lock.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_LOCATION = re.compile(r"\s*\((?P<file>[^()]*?)(?::\d+)?\)$")
_IDLE = (
    "select (selectors.py)",  # the event loop waiting for I/O
    "poll (selectors.py)",
    "_worker (futures/thread.py)",  # a worker thread waiting for work
)


@dataclass(frozen=True)
class Profile:
    samples: int
    """Busy samples: the shares below are of these."""
    idle: int
    inclusive: Counter[str]
    innermost: Counter[str]


def _frame(text: str) -> str:
    """``name (path/to/file.py:12)`` -> ``name (file.py)``: one entry per function."""
    match = _LOCATION.search(text)
    if match is None:
        return text.strip()
    file = match.group("file")
    short = "/".join(file.split("/")[-2:])
    return f"{text[: match.start()].strip()} ({short})"


def read(lines: Iterable[str]) -> Profile:
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    total = idle = 0
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        # py-spy puts the thread name first; it is not a function.
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        if frames[-1] in _IDLE:
            idle += count
            continue
        total += count
        for name in set(frames):
            inclusive[name] += count
        innermost[frames[-1]] += count
    return Profile(total, idle, inclusive, innermost)


def table(profile: Profile, top: int) -> str:
    """A Markdown table of the functions with the most samples, self and inclusive."""
    rows = ["| self % | inclusive % | function |", "|---:|---:|---|"]
    for name, count in profile.innermost.most_common(top):
        share = 100 * count / profile.samples
        whole = 100 * profile.inclusive[name] / profile.samples
        rows.append(f"| {share:.1f} | {whole:.1f} | `{name}` |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--inclusive", action="store_true", help="rank by inclusive share")
    args = parser.parse_args()
    profile = read(args.profile.read_text().splitlines())
    if args.inclusive:
        profile = Profile(profile.samples, profile.idle, profile.inclusive, profile.inclusive)
    print(f"{profile.samples} busy samples, {profile.idle} idle")
    print(table(profile, args.top))


if __name__ == "__main__":
    main()
