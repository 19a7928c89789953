"""Warnings that native decoders (libjpeg, libpng, ffmpeg, OpenCV) print straight to stderr.

Those lines bypass Python, so a bad file used to show two or three lines of library noise before
our own one-line error. Around a file open or decode we point file descriptor 2 at a temporary
file for a moment and hand the text back: the caller turns it into part of its error message
(a corrupt JPEG that libjpeg "repairs" with grey is refused that way) or logs it at debug level.
Used only in the command-line file paths, never around work that other threads share.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from typing import Iterator

log = logging.getLogger(__name__)

# What libjpeg and libpng print when they return a picture they could only partly decode.
DAMAGE_SIGNS = ("corrupt jpeg data", "premature end of jpeg", "invalid jpeg", "libpng error", "crc error",
                "bogus", "not a jpeg file", "truncated")


@dataclass
class NativeOutput:
    """The lines a native library printed while captured (empty until the block ends)."""

    text: str = ""

    @property
    def first_line(self) -> str:
        """The first non-empty line, stripped of OpenCV's ``[ WARN:0@0.01]`` prefix; '' when none."""
        for line in self.text.splitlines():
            line = line.strip()
            if line.startswith("[") and "]" in line:
                line = line.split("]", 1)[1].strip()
            if line:
                return line
        return ""

    @property
    def damaged(self) -> bool:
        """True when the decoder said the data was corrupt or cut short."""
        low = self.text.lower()
        return any(sign in low for sign in DAMAGE_SIGNS)


@contextlib.contextmanager
def captured_native_stderr() -> Iterator[NativeOutput]:
    """Capture what native code writes to fd 2 inside the block; where fd 2 cannot be redirected, capture nothing."""
    out = NativeOutput()
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield out
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield out
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            out.text = sink.read().decode("utf-8", "replace")
            if out.text.strip():
                log.debug("native library said: %s", " | ".join(out.text.split("\n")).strip())
