"""Progress for long work, on stderr: a rich bar on a terminal; elsewhere (a CI log, a pipe) one line every
``LOG_EVERY_S`` seconds with the count, rate and ETA, so a long job never looks hung. Either way, a job whose ETA
exceeds a day says so once, with what to change."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True, soft_wrap=True)  # a note is one line, also in a log
LOG_EVERY_S = 30.0
ETA_WARN_S = 86_400.0
RATE_AFTER_S = 5.0  # the rate is trusted for the ETA warning after this long


def duration(seconds: float) -> str:
    """``45s``, ``12m05s``, ``3h20m``, ``2.5 days``, ``31710 years``."""
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"
    if seconds < 86_400:
        return f"{int(seconds // 3600)}h{int(seconds % 3600 // 60):02d}m"
    days = seconds / 86_400
    return f"{days:.1f} days" if days < 730 else f"{days / 365.25:.0f} years"


@dataclass
class Tracker:
    """Counts the work done and reports it: log lines off a terminal, the ETA warning everywhere."""

    description: str
    total: int
    unit: str = "items"
    hint: str | None = None
    start: float = field(default_factory=time.monotonic)
    done: int = 0
    last_log: float = field(default_factory=time.monotonic)
    warned: bool = False

    def rate(self, now: float) -> float:
        return self.done / max(now - self.start, 1e-9)

    def line(self, now: float, info: dict[str, float]) -> str:
        rate = self.rate(now)
        eta = (self.total - self.done) / rate if rate > 0 else float("inf")
        extra = "".join(f", {k} {v:.4g}" for k, v in info.items())
        return (f"{self.description}: {self.done}/{self.total} ({100 * self.done / max(self.total, 1):.0f}%)"
                f"{extra}, {rate:.3g} {self.unit}/s, elapsed {duration(now - self.start)}, ETA {duration(eta)}")

    def advance(self, n: int, info: dict[str, float], log: bool) -> None:
        self.done += n
        now = time.monotonic()
        if log and (now - self.last_log >= LOG_EVERY_S or self.done >= self.total):
            console.print(self.line(now, info), highlight=False)
            self.last_log = now
        if not self.warned and now - self.start >= RATE_AFTER_S and self.done < self.total:
            eta = (self.total - self.done) / max(self.rate(now), 1e-12)
            if eta > ETA_WARN_S:
                self.warned = True
                console.print(f"[yellow]warning:[/yellow] {self.description}: at {self.rate(now):.3g} {self.unit}/s "
                              f"the remaining {self.total - self.done} take {duration(eta)}"
                              + (f"; {self.hint}" if self.hint else ""), highlight=False)


@contextlib.contextmanager
def progress_bar(description: str, total: int, unit: str = "items",
                 hint: str | None = None) -> Iterator[Callable[..., None]]:
    """Yield ``advance(n, **info)`` (``info``: numbers to show, e.g. ``loss=0.12``); ``hint``: what to change
    when the ETA exceeds a day."""
    tracker = Tracker(description, total, unit, hint)
    if not console.is_terminal:
        yield lambda n, **info: tracker.advance(n, info, log=True)
        return
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(description, total=total)

        def advance(n: int, **info: float) -> None:
            progress.advance(task, n)
            tracker.advance(n, info, log=False)

        yield advance
