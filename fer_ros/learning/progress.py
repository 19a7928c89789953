"""Training news: one line at a time on stderr, beside the progress bars, so stdout stays free for
results (``--json``)."""
from __future__ import annotations

import sys

from tqdm import tqdm


def log(line: str) -> None:
    """Write ``line`` above the progress bars without breaking them."""
    tqdm.write(line, file=sys.stderr)
