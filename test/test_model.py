"""AMS-CNN: shapes, fusion weights, attention range, gradients through every pathway."""
import pytest
import torch

from fer_ros.errors import FerError
from fer_ros.models.ams_cnn import PRESETS, AMSOutput, block_widths, build_model, config_for, count_flops, count_parameters


@pytest.mark.parametrize("preset", ["tiny", "small"])
def test_forward_shapes_and_ranges(preset):
    cfg = config_for(preset)
    model = build_model(cfg).eval()
    x = torch.randn(3, cfg.in_chans, cfg.input_size, cfg.input_size)
    out = model(x)
    assert isinstance(out, AMSOutput)
    assert out.logits.shape == (3, cfg.num_classes)
    assert out.attention.ndim == 4 and out.attention.shape[:2] == (3, 1)
    assert out.attention.min() >= 0 and out.attention.max() <= 1
    assert out.fusion_weights.shape == (3, 3)
    assert torch.allclose(out.fusion_weights.sum(1), torch.ones(3), atol=1e-5)
    assert torch.isfinite(out.logits).all()
    logits, attention, weights = out  # still a tuple: TorchScript and ONNX export it as three outputs
    assert logits is out.logits and attention is out.attention and weights is out.fusion_weights


def test_paper_preset_builds_at_224():
    cfg = config_for("paper")
    assert cfg.input_size == 224 and cfg.widths[0] == 64 and cfg.widths[-1] == 512
    assert cfg.kernels == (3, 5, 7) and cfg.depths == (6, 4, 3) and cfg.scales == (1.0, 0.5, 0.25)
    model = build_model(cfg)
    assert [len(p.blocks) for p in model.pathways] == [6, 4, 3]
    out = model.eval()(torch.randn(1, 3, 224, 224))
    assert out.logits.shape == (1, 7) and out.fusion_weights.shape == (1, 3)


def test_gradients_reach_all_pathways_and_parameters():
    cfg = config_for("tiny")
    model = build_model(cfg).train()
    x = torch.randn(4, cfg.in_chans, cfg.input_size, cfg.input_size)
    out = model(x)
    (out.logits.logsumexp(1).sum() + out.attention.abs().mean()).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
    for i, pathway in enumerate(model.pathways):
        assert any(p.grad.abs().sum() > 0 for p in pathway.parameters()), f"no gradient in pathway {i}"


def test_block_widths_end_at_last_width():
    assert block_widths(6, (64, 128, 256, 512))[-1] == 512
    assert block_widths(3, (64, 128, 256, 512)) == [64, 256, 512]
    assert block_widths(1, (8, 16)) == [16]


def test_counts_are_positive_and_ordered():
    small, paper = build_model(config_for("small")), build_model(config_for("paper"))
    assert 0 < count_parameters(small) < count_parameters(paper)
    assert 0 < count_flops(small) < count_flops(paper)


def test_unknown_preset_names_the_choices():
    with pytest.raises(FerError, match="small"):
        config_for("huge")
    assert set(PRESETS) >= {"paper", "small"}
