"""bf16 CPU training: the convolutions oneDNN's bf16 weight gradient mishandles run in fp32, and a
wider bf16-trained model saves finite weights that load with their own widths."""
import numpy as np
import pytest
import torch
from test_training import args_for, make_folder_dataset

from fer_ros.learning import training
from fer_ros.learning.precision import autocast_dtype, oversized_convs, prepare_bf16
from fer_ros.models.ams_cnn import build_model, config_for
from fer_ros.models.checkpoint import load_checkpoint


def test_oversized_convs_are_the_large_kernels_on_tiny_maps():
    model = build_model(config_for("small"))
    found = oversized_convs(model, (1, 48, 48))
    # the 1/4-scale pathway's 7x7 kernels slide over 6x6 to 2x2 maps, the 1/2-scale one's last 5x5 over 3x3;
    # the full-scale 3x3 pathway never meets a map smaller than its kernel
    assert {conv.kernel_size for conv in found} == {(5, 5), (7, 7)}
    assert not any(conv in found for conv in model.pathways[0].modules())


def test_guarded_convs_run_in_fp32_inside_bf16_autocast():
    model = build_model(config_for("small")).eval()
    assert prepare_bf16(model, (1, 48, 48)) > 0
    guarded = oversized_convs(model, (1, 48, 48))[0]
    seen = {}
    guarded.register_forward_hook(lambda m, i, o: seen.update(dtype=o.dtype))  # returns None: output kept
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(torch.rand(2, 1, 48, 48)).logits
    assert seen["dtype"] == torch.float32 and torch.isfinite(logits).all()


def test_autocast_dtype_is_opt_in_on_cpu():
    assert autocast_dtype(torch.device("cpu"), bf16=False) is None
    assert autocast_dtype(torch.device("cpu"), bf16=True) == torch.bfloat16


def test_wider_bf16_run_saves_finite_weights_with_its_widths(tmp_path):
    data = make_folder_dataset(tmp_path / "faces", n_per_class=30)
    args = args_for(data, tmp_path / "run", "--preset", "small", "--widths", "16,32,48", "--bf16", "--epochs", "2")
    result = training.main(args)
    loaded = load_checkpoint(result["best"])
    assert loaded.model.cfg.widths == (16, 32, 48)
    assert all(torch.isfinite(p).all() for p in loaded.model.state_dict().values() if p.is_floating_point())
    assert np.isfinite(loaded.temperature) and loaded.meta["args"]["widths"] == [16, 32, 48]


@pytest.mark.parametrize("text", ["32,x,128", "0,16", ""])
def test_bad_widths_are_a_usage_error(text, capsys):
    with pytest.raises(SystemExit):
        training.get_args_parser().parse_args(["--data", "d", "--widths", text])
    assert "widths must be" in capsys.readouterr().err
