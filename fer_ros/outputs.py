"""Output paths checked before any work starts, and files that appear whole or not at all.

Commands check every path they will write (``check_output_file``, ``check_output_dir``) before
models load or frames are read, so a typo costs a second, not a whole run. Files are written
under a hidden temporary name beside the target and moved onto it with ``os.replace`` when
complete (``staged_path``, ``publish``), so two runs writing the same path never interleave
into an undecodable file: the last one to finish wins, whole.
"""
from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterable

from fer_ros.errors import FerError


def _existing_ancestor(path: Path) -> Path:
    """The nearest folder above ``path`` that exists (what ``mkdir -p`` would start from)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    return parent


def check_parent_writable(path: Path, option: str) -> None:
    """``path``'s folder exists or can be created, and new files can be made in it."""
    base = _existing_ancestor(path)
    if not base.is_dir():
        raise FerError(f"{option} '{path}' lies under '{base}', which is a file, not a folder; choose a path in a folder")
    if not os.access(base, os.W_OK | os.X_OK):
        raise FerError(f"{option} '{path}': cannot write in '{base}' (permission denied); choose a writable folder")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def check_output_file(path: str | os.PathLike, option: str, suffixes: Iterable[str] = (),
                      inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """A file path that can be written now: a known suffix, not an input, not a folder, in a writable folder."""
    out = Path(path).expanduser()
    suffixes = tuple(suffixes)
    if not str(path).strip():
        raise FerError(f"{option} was given an empty path; give a file name such as out.mp4")
    for source in inputs:
        if _same_file(out, Path(source).expanduser()):
            raise FerError(f"{option} '{out}' is the input file itself (it would be overwritten while it is read); "
                           "write to another path")
    if out.is_dir():
        example = out / ("output" + (".mp4" if ".mp4" in suffixes or not suffixes else suffixes[0]))
        raise FerError(f"{option} '{out}' is an existing folder; give a file path in it, such as {example}")
    if suffixes and out.suffix.lower() not in suffixes:
        raise FerError(f"{option} '{out}': unknown extension '{out.suffix}'; use one of {', '.join(suffixes)}")
    if out.exists() and not os.access(out, os.W_OK):
        raise FerError(f"{option} '{out}' exists and is read-only; choose another path or make it writable")
    check_parent_writable(out, option)
    return out


def check_output_dir(path: str | os.PathLike, option: str, files: Iterable[str] = ()) -> Path:
    """A folder that can be created or written into; ``files`` it will hold must not be folders or read-only."""
    out = Path(path).expanduser()
    if not str(path).strip():
        raise FerError(f"{option} was given an empty path; give a folder name")
    if out.exists() and not out.is_dir():
        raise FerError(f"{option} '{out}' is an existing file, not a folder; give a folder path (it is created if missing)")
    if out.is_dir():
        if not os.access(out, os.W_OK | os.X_OK):
            raise FerError(f"{option} '{out}': cannot write in it (permission denied); choose a writable folder")
        for name in files:
            target = out / name
            if target.is_dir() or (target.exists() and not os.access(target, os.W_OK)):
                raise FerError(f"{option} '{out}' holds '{name}', which cannot be replaced (a folder or read-only); "
                               "choose another folder or remove it")
        return out
    check_parent_writable(out, option)
    return out


def make_dirs(path: Path, option: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FerError(f"{option}: cannot create folder '{path}': {exc.strerror or exc}; choose a writable folder") from None


def staged_path(path: Path) -> Path:
    """A new, unique hidden name beside ``path`` with the same suffix (codecs go by the suffix); not created yet."""
    make_dirs(path.parent, str(path))
    return path.with_name(f".{path.stem}.{os.getpid()}-{uuid.uuid4().hex[:8]}.part{path.suffix}")


def publish(staged: Path, path: Path) -> None:
    """Move a finished file onto its real name in one step; a reader never sees half of it."""
    try:
        os.replace(staged, path)
    except OSError as exc:
        discard(staged)
        raise FerError(f"cannot write '{path}': {exc.strerror or exc}; choose another path") from None


def discard(staged: Path) -> None:
    try:
        staged.unlink()
    except OSError:
        pass


def write_bytes_whole(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a staged file, so the path holds the old or the new bytes, never a mix."""
    staged = staged_path(path)
    try:
        staged.write_bytes(data)
    except OSError as exc:
        discard(staged)
        raise FerError(f"cannot write '{path}': {exc.strerror or exc}; check the folder is writable") from None
    publish(staged, path)
