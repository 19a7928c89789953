"""The camera QoS choice (fer_ros.messages.qos) without ROS: auto follows the publishers, forced modes hold."""
import pytest

from fer_ros.messages.qos import AUTO, BEST_EFFORT, RELIABLE, choose_reliability


@pytest.mark.parametrize("offered, expected", [
    ([RELIABLE], RELIABLE),
    ([RELIABLE, RELIABLE], RELIABLE),
    ([BEST_EFFORT], BEST_EFFORT),
    ([RELIABLE, BEST_EFFORT], BEST_EFFORT),  # a reliable subscription would miss the best-effort one
])
def test_auto_follows_the_publishers(offered, expected):
    choice = choose_reliability(AUTO, offered)
    assert choice.reliability == expected
    assert str(len(offered)) in choice.reason


def test_auto_without_publishers_starts_best_effort_then_keeps_what_it_has():
    assert choose_reliability(AUTO, []).reliability == BEST_EFFORT
    assert choose_reliability(AUTO, [], current=RELIABLE).reliability == RELIABLE
    assert "keeping" in choose_reliability(AUTO, [], current=RELIABLE).reason


@pytest.mark.parametrize("mode", [RELIABLE, BEST_EFFORT])
@pytest.mark.parametrize("offered", [[], [RELIABLE], [BEST_EFFORT]])
def test_forced_modes_ignore_the_publishers(mode, offered):
    choice = choose_reliability(mode, offered)
    assert choice.reliability == mode and f"camera_qos={mode}" in choice.reason


def test_forced_reliable_says_it_misses_best_effort_publishers():
    assert "does not match the 1 best-effort" in choose_reliability(RELIABLE, [BEST_EFFORT, RELIABLE]).reason


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="auto, reliable, best_effort"):
        choose_reliability("fast", [])
