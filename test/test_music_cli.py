"""`fer-ros music` over JSON lines in the format `fer-ros detect` prints."""
from __future__ import annotations

import argparse
import io
import json
from pathlib import Path

import pytest

from fer_ros.commands import music
from fer_ros.errors import FerError

DT = 0.1


def frames(segments: list[tuple[str | None, float]]) -> list[dict]:
    """`fer-ros detect`-style frame objects; label None = nobody in view."""
    out, t = [], 0.0
    for label, duration in segments:
        begin = t
        for _ in range(round(duration / DT)):
            faces = [] if label is None else [{
                "id": 1, "bbox": [10.0, 10.0, 110.0, 130.0], "landmarks": [[0.0, 0.0]] * 5, "detection_score": 0.99,
                "label": label, "confidence": 0.8, "probabilities": {label: 0.8}, "raw_label": label,
                "stable": True, "stable_for": round(t - begin, 3), "detected": True}]
            out.append({"frame": len(out), "stamp": round(t, 6), "faces": faces})
            t = round(t + DT, 6)
    return out


def write_jsonl(path: Path, objects: list, extra: str = "") -> Path:
    path.write_text("\n".join(json.dumps(o) for o in objects) + "\n" + extra)
    return path


def run_music(argv: list[str], capsys) -> list[dict]:
    parser = argparse.ArgumentParser(prog="fer-ros")
    music.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["music"] + argv)
    assert args.func(args) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "music.yaml"
    path.write_text("min_stable_s: 1.0\ncooldown_s: 2.0\nno_face: {after_s: 1.5, action: pause}\n"
                    "playlists: {happy: [joy.mp3], sad: [blue.mp3], calm: [rain.ogg]}\n"
                    "uplift: {sad: calm, happy: happy}\n")
    return path


def test_cli_prints_the_expected_decisions(tmp_path, config, capsys):
    data = write_jsonl(tmp_path / "detect.jsonl", frames([("happy", 2.0), ("sad", 3.0), (None, 2.0), ("sad", 0.5)]))
    out = run_music(["--input", str(data), "--config", str(config), "--dry-run"], capsys)
    assert [(d["stamp"], d["action"], d["emotion"], d["track"], d["playlist"], d["item"]) for d in out] == [
        (1.0, "play", "happy", 1, "happy", "joy.mp3"),
        (3.0, "play", "sad", 1, "sad", "blue.mp3"),
        (6.4, "pause", "", -1, "sad", "blue.mp3"),
        (7.0, "play", "sad", 1, "sad", "blue.mp3"),
    ]
    assert all(d["reason"] and d["strategy"] == "match" for d in out)


def test_cli_strategy_override_and_stdin(tmp_path, config, capsys, monkeypatch):
    text = "\n".join(json.dumps(f) for f in frames([("sad", 2.0)]))
    monkeypatch.setattr("sys.stdin", io.StringIO(text))
    out = run_music(["--input", "-", "--config", str(config), "--strategy", "uplift"], capsys)
    assert [(d["emotion"], d["playlist"], d["item"], d["strategy"]) for d in out] == [("sad", "calm", "rain.ogg", "uplift")]


def test_cli_dry_run_never_starts_a_player(tmp_path, capsys):
    config = tmp_path / "music.yaml"
    config.write_text("min_stable_s: 0.5\nbackend: command\ncommand: {argv: [no-such-player-fer-ros, '{item}']}\n")
    data = write_jsonl(tmp_path / "d.jsonl", frames([("happy", 1.0)]))
    out = run_music(["--input", str(data), "--config", str(config), "--dry-run"], capsys)
    assert [d["action"] for d in out] == ["play"]
    with pytest.raises(FerError, match="no-such-player-fer-ros"):  # without --dry-run the player is started
        run_music(["--input", str(data), "--config", str(config)], capsys)


def test_cli_skips_blank_and_non_frame_lines(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", frames([("happy", 3.0)]), extra='\n{"summary": {"frames": 30}}\n')
    out = run_music(["--input", str(data)], capsys)  # built-in defaults: min_stable_s 2.0
    assert [(d["stamp"], d["emotion"]) for d in out] == [(2.0, "happy")]


def test_cli_bad_json_line_names_the_line(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", frames([("happy", 0.2)]), extra="{not json\n")
    with pytest.raises(FerError, match=r"d.jsonl line 3 is not JSON"):
        run_music(["--input", str(data)], capsys)


def test_cli_bad_frame_names_the_line(tmp_path, capsys):
    data = write_jsonl(tmp_path / "d.jsonl", [{"frame": 0, "stamp": 0.0, "faces": [{"label": "happy"}]}])
    with pytest.raises(FerError, match=r"line 1: .*'id'"):
        run_music(["--input", str(data)], capsys)


def test_fer_ros_music_exits_2_with_a_one_line_error(tmp_path, capsys):
    from fer_ros.cli import main

    assert main(["music", "--input", str(tmp_path / "missing.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "fer-ros music: error:" in err and "missing.jsonl" in err
