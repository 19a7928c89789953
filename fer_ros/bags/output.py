"""New bags: the output path checked up front, the bag written aside and moved into place whole.

``check_output_bag`` runs before any work (free or --force-able path, writable folder, not an
input). ``StagedBag`` writes into a hidden folder beside the destination; ``commit`` moves the
finished bag onto the path (deleting an old bag only then, with --force), ``discard`` leaves
nothing behind. So a failed run never leaves an empty bag that blocks the corrected re-run,
--force never deletes the old bag before a new one exists, and two runs writing the same path
each write their own folder instead of corrupting one sqlite file.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable

from rosbags.rosbag2 import StoragePlugin, Writer

from fer_ros.errors import FerError
from fer_ros.outputs import check_parent_writable, make_dirs

STORAGES = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
# rosbag2 metadata version 8 (Iron). Humble and later read it: their parser takes each field by
# version and ignores the ones it does not know; Jazzy reads it natively.
BAG_VERSION = 8
# Files a rosbag2 folder may hold; --force deletes only folders made of these.
BAG_FILE_SUFFIXES = (".yaml", ".db3", ".mcap", ".db3-shm", ".db3-wal", ".db3-journal", ".zstd")


def check_output_bag(path: str | os.PathLike, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """FerError unless a new bag can be written at ``path`` (with ``force``, over an old bag); deletes nothing."""
    out = Path(path).expanduser()
    if not str(path).strip():
        raise FerError("the output bag path is empty; give a folder name such as out_bag")
    for source in inputs:
        src = Path(source).expanduser().resolve()
        if src == out.resolve() or out.resolve() in src.parents:
            raise FerError(f"output bag '{out}' is (or holds) the input bag '{source}'; write to another path")
    if out.exists() or out.is_symlink():
        if not force:
            raise FerError(f"output bag '{out}' already exists (bags are never overwritten); "
                           "choose another path or pass --force to delete it first")
        _check_deletable(out)
    check_parent_writable(out, "output bag")
    return out


def _check_deletable(out: Path) -> None:
    if out.is_dir() and not out.is_symlink():
        strangers = [p.name for p in out.iterdir() if p.is_dir() or not p.name.endswith(BAG_FILE_SUFFIXES)]
        if strangers:
            held = ", ".join(sorted(strangers)[:5])
            raise FerError(f"--force refuses to delete '{out}': it is not a bag folder (it holds {held}); "
                           "choose another output path")


def _delete_bag(out: Path) -> None:
    _check_deletable(out)
    if out.is_dir() and not out.is_symlink():
        shutil.rmtree(out)
    else:
        out.unlink()


def prepare_output(path: str | os.PathLike, force: bool = False, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Check that a new bag can be written at ``path``; with ``force`` delete an old bag there now."""
    out = check_output_bag(path, force, inputs)
    if out.exists() or out.is_symlink():
        _delete_bag(out)
    return out


def _open_writer(path: Path, storage: str) -> Writer:
    if storage not in STORAGES:
        raise FerError(f"unknown bag storage '{storage}'; use one of {', '.join(STORAGES)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = Writer(path, version=BAG_VERSION, storage_plugin=STORAGES[storage])
        writer.open()
    except OSError as exc:
        raise FerError(f"cannot create bag '{path}': {exc.strerror or exc}; check the folder is writable") from None
    return writer


def create_writer(path: str | os.PathLike, storage: str = "sqlite3", force: bool = False,
                  inputs: Iterable[str | os.PathLike] = ()) -> Writer:
    """An open rosbags Writer straight at ``path`` (for building test and sample bags in place)."""
    if storage not in STORAGES:
        raise FerError(f"unknown bag storage '{storage}'; use one of {', '.join(STORAGES)}")
    return _open_writer(prepare_output(path, force, inputs), storage)


class StagedBag:
    """A new bag written in a hidden folder beside ``path``; ``commit`` gives it its name, ``discard`` removes it."""

    def __init__(self, path: str | os.PathLike, storage: str = "sqlite3", force: bool = False,
                 inputs: Iterable[str | os.PathLike] = ()) -> None:
        if storage not in STORAGES:
            raise FerError(f"unknown bag storage '{storage}'; use one of {', '.join(STORAGES)}")
        self.out = check_output_bag(path, force, inputs)
        self.force = force
        make_dirs(self.out.parent, "output bag")
        try:
            self.stage = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", suffix=".part", dir=self.out.parent))
        except OSError as exc:
            raise FerError(f"cannot create bag '{self.out}': {exc.strerror or exc}; check the folder is writable") from None
        try:
            self.writer = _open_writer(self.stage / self.out.name, storage)
        except BaseException:
            shutil.rmtree(self.stage, ignore_errors=True)
            raise
        self._open = True

    def _close(self) -> None:
        if self._open:
            self._open = False
            self.writer.close()

    def commit(self) -> Path:
        """Finish the bag and move it onto the output path (an old bag there is deleted now, with --force)."""
        self._close()
        built = self.stage / self.out.name
        for _ in range(3):  # another run may finish the same path in between: then the last one wins
            try:
                if self.out.exists() or self.out.is_symlink():
                    if not self.force:
                        raise FerError(f"output bag '{self.out}' was created by another program during this run; "
                                       f"this run's bag is kept at '{built}'")
                    _delete_bag(self.out)
                os.rename(built, self.out)
                break
            except FileNotFoundError:
                continue  # the other run deleted or moved it first: try again
            except OSError as exc:
                if not self.out.exists():
                    raise FerError(f"cannot create bag '{self.out}': {exc.strerror or exc}; this run's bag is kept "
                                   f"at '{built}'") from None
        else:
            raise FerError(f"output bag '{self.out}' keeps being replaced by another run; this run's bag is kept at '{built}'")
        shutil.rmtree(self.stage, ignore_errors=True)
        return self.out

    def discard(self) -> None:
        """Close and delete the unfinished bag; nothing is left beside the output path."""
        try:
            self._close()
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
