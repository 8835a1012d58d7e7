"""A small text progress bar on stderr, drawn only for interactive terminals.

It is a ``callback(iteration, loss)`` for the fit pipeline (:mod:`jaxlogreg.training.pipeline`),
which calls it between the segments of its on-device loop. When the stream is not a TTY (a pipe, a log file, CI) or
the bar is disabled, every method is a no-op, so non-interactive runs print nothing.

Example::

    with ProgressBar(total=1000, label="train") as bar:
        fit(X, y, config, callback=bar.update)
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import TextIO

_WIDTH = 30


def is_interactive(stream: TextIO) -> bool:
    """True when ``stream`` is a terminal (``isatty``); False for pipes, files and closed streams."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


class ProgressBar(contextlib.AbstractContextManager):
    """``label [########......] 450/1000  loss 0.301234  1.2s`` redrawn in place with ``\\r``.

    Args:
      total: the number of iterations expected (the bar is full at ``total``).
      label: text before the bar.
      stream: where to draw; ``sys.stderr`` by default (read when the bar is created).
      enabled: None (default) draws only when ``stream`` is a TTY; False never draws; True
        always draws (for tests).
    """

    def __init__(
        self,
        total: int,
        label: str = "",
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.total = max(int(total), 1)
        self.label = label
        self.stream = sys.stderr if stream is None else stream
        self.enabled = is_interactive(self.stream) if enabled is None else bool(enabled)
        self._start = time.perf_counter()
        self._drawn = False
        self._last_len = 0
        self.update(0)  # show the bar while the first segment compiles

    def update(self, iteration: int, loss: float = math.nan) -> None:
        """Redraw at ``iteration`` (clipped to ``total``) with the latest loss."""
        if not self.enabled:
            return
        done = min(max(int(iteration), 0), self.total)
        filled = round(_WIDTH * done / self.total)
        bar = "#" * filled + "." * (_WIDTH - filled)
        loss_text = f"  loss {loss:.6f}" if math.isfinite(loss) else ""
        elapsed = time.perf_counter() - self._start
        prefix = f"{self.label} " if self.label else ""
        line = f"{prefix}[{bar}] {done}/{self.total}{loss_text}  {elapsed:.1f}s"
        pad = " " * max(self._last_len - len(line), 0)
        self.stream.write("\r" + line + pad)
        self.stream.flush()
        self._drawn = True
        self._last_len = len(line)

    __call__ = update

    def close(self) -> None:
        """End the bar's line (only if something was drawn)."""
        if self.enabled and self._drawn:
            self.stream.write("\n")
            self.stream.flush()
        self._drawn = False

    def __exit__(self, *exc: object) -> None:  # the `with` block closes it
        self.close()
