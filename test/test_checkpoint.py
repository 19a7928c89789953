"""Checkpoints: round trip with weights_only loading, and clear errors for bad files."""
import pickle

import pytest
import torch

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import build_model, config_for
from fer_ros.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from fer_ros.models.preprocess import Preprocessing


def test_round_trip_keeps_weights_config_and_preprocessing(tmp_path):
    model = build_model(config_for("tiny", num_classes=5)).eval()
    pre = Preprocessing(input_size=32, clahe=False, mean=0.4)
    path = tmp_path / "m.pt"
    save_checkpoint(str(path), model, pre, list("abcde"), {"note": "x"})
    loaded = load_checkpoint(str(path))
    assert loaded.class_names == list("abcde") and loaded.preprocessing == pre and loaded.meta == {"note": "x"}
    x = torch.randn(2, 1, 32, 32)
    assert torch.allclose(model(x).logits, loaded.model(x).logits, atol=1e-6)


def test_half_storage_is_smaller_and_close(tmp_path):
    model = build_model(config_for("tiny")).eval()
    save_checkpoint(str(tmp_path / "f.pt"), model, Preprocessing(input_size=32), [str(i) for i in range(7)])
    save_checkpoint(str(tmp_path / "h.pt"), model, Preprocessing(input_size=32), [str(i) for i in range(7)], half=True)
    assert (tmp_path / "h.pt").stat().st_size < (tmp_path / "f.pt").stat().st_size
    x = torch.randn(2, 1, 32, 32)
    assert torch.allclose(model(x).logits, load_checkpoint(str(tmp_path / "h.pt")).model(x).logits, atol=2e-2)


def test_missing_file_names_the_fix(tmp_path):
    with pytest.raises(FerError, match="not found"):
        load_checkpoint(str(tmp_path / "nope.pt"))


def test_class_count_mismatch_is_clear(tmp_path):
    model = build_model(config_for("tiny"))
    with pytest.raises(FerError, match="class names"):
        save_checkpoint(str(tmp_path / "m.pt"), model, Preprocessing(), ["a", "b"])
    save_checkpoint(str(tmp_path / "m.pt"), model, Preprocessing(), [str(i) for i in range(7)])
    payload = read_checkpoint(str(tmp_path / "m.pt"))
    payload["class_names"] = ["a", "b", "c"]
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(FerError, match="3 class names but its model has 7"):
        load_checkpoint(str(tmp_path / "bad.pt"))


def test_shape_mismatch_names_the_keys(tmp_path):
    save_checkpoint(str(tmp_path / "m.pt"), build_model(config_for("tiny")), Preprocessing(), [str(i) for i in range(7)])
    payload = read_checkpoint(str(tmp_path / "m.pt"))
    payload["model_config"]["head_hidden"] = 64
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(FerError, match="shape mismatch"):
        load_checkpoint(str(tmp_path / "bad.pt"))


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_tampered_pickle_is_refused_not_executed(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": "fer_ros.ams_cnn/1", "payload": Evil()}, path)
    with pytest.raises(FerError, match="pickled Python objects that weights-only loading refuses"):
        load_checkpoint(str(path))
    assert "pwned" not in capsys.readouterr().out
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(FerError, match=r"not a PyTorch checkpoint \(no zip archive header; some other kind of file\)"):
        load_checkpoint(str(tmp_path / "junk.pt"))
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(FerError, match="empty file"):
        load_checkpoint(str(tmp_path / "empty.pt"))
    (tmp_path / "plain.pt").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(FerError, match="not a PyTorch checkpoint"):
        load_checkpoint(str(tmp_path / "plain.pt"))


def test_truncated_checkpoint_is_reported_as_damaged(tmp_path):
    whole = (tmp_path / "whole.pt")
    torch.save({"format": "fer_ros.ams_cnn/1", "state_dict": {"w": torch.zeros(1000)}}, whole)
    data = whole.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(FerError, match=r"the checkpoint is damaged \(\w+\); copy it again"):
        load_checkpoint(str(tmp_path / "cut.pt"))
