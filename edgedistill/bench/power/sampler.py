"""Run ``tegrastats`` in the background and collect its samples during a measurement window."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from types import TracebackType

from edgedistill.bench.power.tegrastats import Sample, parse_line
from edgedistill.errors import MissingDependencyError

INTERVAL_MS = 100


def tegrastats_available() -> bool:
    return shutil.which("tegrastats") is not None


class TegrastatsSampler:
    """Context manager: ``with TegrastatsSampler() as s: work()`` then ``s.samples`` and ``s.seconds``.

    Lines are read as they come on a thread, timestamped by this process's monotonic clock (tegrastats'
    own stamps have one-second resolution); only lines inside the window are kept.

    Raises:
        MissingDependencyError: tegrastats is not on PATH (not a Jetson, or JetPack's tools not installed).
    """

    def __init__(self, interval_ms: int = INTERVAL_MS, command: list[str] | None = None):
        if command is None and not tegrastats_available():
            raise MissingDependencyError("power sampling needs tegrastats (JetPack, on a Jetson); "
                                         "set bench.power to off elsewhere")
        self.command = command or ["tegrastats", "--interval", str(interval_ms)]
        self.samples: list[tuple[float, Sample]] = []
        self.start = self.stop = 0.0
        self.proc: subprocess.Popen[str] | None = None
        self.reader: threading.Thread | None = None

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            sample = parse_line(line)
            now = time.perf_counter()
            if sample is not None and self.start and (not self.stop or now <= self.stop):
                self.samples.append((now, sample))

    def __enter__(self) -> TegrastatsSampler:
        self.proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        time.sleep(2 * INTERVAL_MS / 1000)  # let tegrastats print its first line before the window opens
        self.start = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, err: BaseException | None, tb: TracebackType | None) -> None:
        self.stop = time.perf_counter()
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=5)
        if self.reader is not None:
            self.reader.join(timeout=1)

    @property
    def seconds(self) -> float:
        return self.stop - self.start
