"""A progress line for long work (training steps, generation batches, judging), so that a 7B run
on a GPU box, or a long CPU run, does not look hung.

`progress(total, desc, unit)` is a tqdm bar on stderr: one line, redrawn at most every
`MININTERVAL` seconds, with count, rate and ETA. It is off when stderr is not a terminal (DVC
logs, CI, pytest capture), so logs and stage outputs stay clean and byte-stable; the environment
variable VALUEHARM_PROGRESS=1 forces it on, 0 forces it off. Progress never touches an output.

    with progress(len(batches), "generate", unit="prompt") as bar:
        for batch in batches:
            ...
            bar.update(len(batch))
"""

from __future__ import annotations

import os
import sys
from typing import IO, Any

ENV = "VALUEHARM_PROGRESS"
MININTERVAL = 3.0  # seconds between redraws: "one line per few seconds"
BAR_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def enabled(stream: IO[str] | None = None) -> bool:
    """On for a terminal, off otherwise; VALUEHARM_PROGRESS=0/1 overrides."""
    flag = os.environ.get(ENV, "").strip().lower()
    if flag in ("1", "true", "yes", "on"):
        return True
    if flag in ("0", "false", "no", "off"):
        return False
    stream = stream if stream is not None else sys.stderr
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # closed or replaced streams
        return False


def progress(total: int | None, desc: str, unit: str = "it", stream: IO[str] | None = None, **kwargs: Any) -> Any:
    """A tqdm progress bar (a no-op one when disabled); use as a context manager and call update(n)."""
    from tqdm import tqdm

    stream = stream if stream is not None else sys.stderr
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=stream,
        disable=not enabled(stream),
        mininterval=MININTERVAL,
        maxinterval=max(MININTERVAL, 10.0),
        miniters=1,
        smoothing=0.3,
        dynamic_ncols=True,
        leave=True,
        bar_format=BAR_FORMAT,
        **kwargs,
    )
