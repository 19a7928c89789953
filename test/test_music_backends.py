"""Player backends against real programs: a harmless Python 'player' and a stand-in playerctl."""
from __future__ import annotations

import os
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from fer_ros.errors import FerError
from fer_ros.music.backends import CommandBackend, LogBackend, MprisBackend, make_backend
from fer_ros.music.mapping import CommandConfig, MprisConfig, MusicConfig
from fer_ros.music.policy import Decision

# A "player" that notes the item it was given in a marker file, then plays (sleeps) for 30 s.
PLAYER = "import sys, time; open(sys.argv[1], 'a').write(sys.argv[2] + '\\n'); time.sleep(30)"
posix_only = pytest.mark.skipif(os.name != "posix", reason="SIGSTOP/SIGCONT and /proc need POSIX")


def decision(action: str, item: str = "", playlist: str = "happy", emotion: str = "happy") -> Decision:
    return Decision(stamp=1.0, action=action, emotion=emotion, playlist=playlist, item=item, track_id=1,
                    strategy="match", reason="test")


def wait_for(predicate, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def proc_state(pid: int) -> str:
    """Linux process state letter: T when stopped by SIGSTOP."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "played.txt"


def player(marker: Path, pause: str = "sigstop") -> CommandBackend:
    return CommandBackend(CommandConfig(argv=[sys.executable, "-c", PLAYER, str(marker), "{item}"], pause=pause))


def test_command_backend_plays_changes_and_closes(marker):
    backend = player(marker)
    try:
        backend.apply(decision("play", "first song.mp3"))
        first = backend.process
        assert wait_for(lambda: lines(marker) == ["first song.mp3"])  # one argument, spaces and all
        assert first.poll() is None
        backend.apply(decision("play", "second.mp3", playlist="sad", emotion="sad"))
        assert first.returncode is not None  # the previous player was terminated and reaped
        assert wait_for(lambda: lines(marker) == ["first song.mp3", "second.mp3"])
        second = backend.process
        backend.apply(decision("keep", "second.mp3"))
        assert backend.process is second and second.poll() is None
    finally:
        backend.close()
    assert second.returncode is not None and backend.process is None


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc to see the stopped state")
@posix_only
def test_command_backend_pause_freezes_and_resume_continues_the_same_process(marker):
    backend = player(marker)
    try:
        backend.apply(decision("play", "a.mp3"))
        assert wait_for(lambda: lines(marker) == ["a.mp3"])
        proc = backend.process
        backend.apply(decision("pause", "a.mp3"))
        assert wait_for(lambda: proc_state(proc.pid) == "T")
        backend.apply(decision("play", "a.mp3"))  # resume: SIGCONT, no new process
        assert backend.process is proc
        assert wait_for(lambda: proc_state(proc.pid) != "T")
        backend.apply(decision("pause", "a.mp3"))
        assert wait_for(lambda: proc_state(proc.pid) == "T")
    finally:
        started = time.monotonic()
        backend.close()  # must end a stopped player too (SIGCONT before SIGTERM)
    assert proc.returncode is not None and time.monotonic() - started < 2.5
    assert lines(marker) == ["a.mp3"]


def test_command_backend_pause_terminate_restarts_on_resume(marker):
    backend = player(marker, pause="terminate")
    try:
        backend.apply(decision("play", "b.mp3"))
        assert wait_for(lambda: lines(marker) == ["b.mp3"])
        proc = backend.process
        backend.apply(decision("pause", "b.mp3"))
        assert proc.returncode is not None and backend.process is None
        backend.apply(decision("play", "b.mp3"))
        assert wait_for(lambda: lines(marker) == ["b.mp3", "b.mp3"])
        backend.apply(decision("stop", "b.mp3"))
        assert backend.process is None
    finally:
        backend.close()


def test_command_substitutes_per_argument_and_never_uses_a_shell():
    backend = CommandBackend(CommandConfig(argv=["play", "--title={emotion}/{playlist}", "{item}"]),
                             playlists={"happy": ["a", "b", "c"]})
    tricky = "x; rm -rf ~ {playlist} $(whoami)"
    assert backend.command_for(decision("play", tricky)) == ["play", "--title=happy/happy", tricky]
    many = CommandBackend(CommandConfig(argv=["mpv", "{items}"]), playlists={"happy": ["a", "b", "c"]})
    assert many.command_for(decision("play", "b")) == ["mpv", "b", "c", "a"]


def test_command_template_must_be_an_argv_list():
    with pytest.raises(FerError, match="not a shell string"):
        CommandBackend(CommandConfig(argv="mpv {item}"))


def test_command_backend_names_a_missing_program():
    backend = CommandBackend(CommandConfig(argv=["no-such-player-fer-ros", "{item}"]))
    with pytest.raises(FerError, match="no-such-player-fer-ros.*not found"):
        backend.apply(decision("play", "a.mp3"))


def fake_playerctl(folder: Path, log: Path, exit_code: int = 0) -> None:
    script = folder / "playerctl"
    script.write_text(textwrap.dedent(f"""\
        #!{sys.executable}
        import sys
        open({str(log)!r}, "a").write(" ".join(sys.argv[1:]) + "\\n")
        if {exit_code}:
            sys.stderr.write("No players found\\n")
        sys.exit({exit_code})
        """))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_mpris_without_playerctl_gives_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no playerctl on PATH
    with pytest.raises(FerError, match="playerctl.*not installed.*--backend log"):
        MprisBackend()
    with pytest.raises(FerError, match="playerctl"):
        make_backend("mpris", MusicConfig())


@posix_only
def test_mpris_drives_playerctl(tmp_path, monkeypatch):
    calls = tmp_path / "calls.txt"
    fake_playerctl(tmp_path, calls)
    monkeypatch.setenv("PATH", str(tmp_path))
    song = tmp_path / "song one.mp3"
    song.write_bytes(b"")
    backend = MprisBackend(MprisConfig(player="vlc"))
    backend.apply(decision("play", str(song)))
    backend.apply(decision("pause", str(song)))
    backend.apply(decision("play", str(song)))  # resume, not reopen
    backend.apply(decision("play", "spotify:track:42"))
    backend.apply(decision("keep", "spotify:track:42"))
    backend.apply(decision("stop", "spotify:track:42"))
    assert lines(calls) == [f"--player=vlc open {song.resolve().as_uri()}", "--player=vlc pause",
                            "--player=vlc play", "--player=vlc open spotify:track:42", "--player=vlc stop"]


@posix_only
def test_mpris_reports_playerctl_failures(tmp_path, monkeypatch):
    fake_playerctl(tmp_path, tmp_path / "calls.txt", exit_code=1)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(FerError, match="No players found"):
        MprisBackend().apply(decision("pause", "x"))


def test_log_backend_reports_what_it_would_do():
    out: list[str] = []
    backend = LogBackend(out.append)
    backend.apply(decision("play", "calm piano", playlist="calm"))
    backend.apply(decision("pause", "calm piano", playlist="calm"))
    assert "would play 'calm piano' from playlist calm" in out[0] and "would pause" in out[1]


def test_make_backend_rejects_unknown_names():
    assert make_backend("LOG").name == "log"
    assert make_backend("command", MusicConfig()).name == "command"
    with pytest.raises(FerError, match="log, mpris, command"):
        make_backend("winamp")
