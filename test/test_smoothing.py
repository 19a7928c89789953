"""EmotionSmoother on synthetic probability sequences timed by stamps: flips, flicker, sustained change."""
import math

import numpy as np
import pytest

from fer_ros.config import SmootherConfig
from fer_ros.errors import FerError
from fer_ros.perception.smoothing import EmotionSmoother
from fer_ros.types import UNCERTAIN

CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
HAPPY, SAD, NEUTRAL = CLASSES.index("happy"), CLASSES.index("sad"), CLASSES.index("neutral")


def peaked(index: int, p: float = 0.9) -> np.ndarray:
    """Probabilities with ``p`` on one class and the rest spread evenly."""
    probs = np.full(len(CLASSES), (1.0 - p) / (len(CLASSES) - 1))
    probs[index] = p
    return probs


def smoother(**settings) -> EmotionSmoother:
    # The timing tests hand one peaked class over to another; at the crossing both are near 0.45, so
    # they set a threshold below that unless a test is about the threshold itself.
    settings.setdefault("confidence_threshold", 0.4)
    return EmotionSmoother(SmootherConfig(**settings), CLASSES)


def stamps(fps: float, start: float, end: float) -> np.ndarray:
    n = int(round((end - start) * fps))
    return start + np.arange(n) / fps


def switch_time(fps: float, change_at: float, **settings) -> tuple[float, list]:
    """Happy until ``change_at`` s, sad afterwards; stamp of the first published 'sad'."""
    s = smoother(**settings)
    out = []
    for t in stamps(fps, 0.0, change_at + 5.0):
        r = s.update(1, peaked(HAPPY if t < change_at else SAD), t)
        out.append((t, r))
        if r.label == "sad":
            return t, out
    raise AssertionError("never switched to sad")


# ---------------------------------------------------------------- basics

def test_first_update_publishes_input_immediately_but_not_stable():
    s = smoother(hysteresis=0.5)
    probs = peaked(HAPPY, 0.8)
    r = s.update(7, probs, 100.0)
    assert r.label == "happy"
    np.testing.assert_allclose(r.probabilities, probs, rtol=1e-6)
    assert r.confidence == pytest.approx(0.8)
    assert r.stable is False and r.stable_for == 0.0
    assert r.probabilities.dtype == np.float32 and r.probabilities.shape == (7,)


def test_first_update_is_stable_when_hysteresis_is_zero():
    r = smoother(hysteresis=0.0).update(1, peaked(SAD), 3.0)
    assert r.label == "sad" and r.stable is True


def test_stable_and_stable_for_follow_the_stamps():
    s = smoother(hysteresis=0.5, window=0.2)
    seen = {t: s.update(1, peaked(HAPPY), t) for t in (10.0, 10.2, 10.45, 10.5, 11.75)}
    assert [round(r.stable_for, 9) for r in seen.values()] == [0.0, 0.2, 0.45, 0.5, 1.75]
    assert [r.stable for r in seen.values()] == [False, False, False, True, True]


def test_tracks_are_independent_and_drop_reset_len():
    s = smoother(hysteresis=0.3)
    for k in range(20):
        t = k / 10
        assert s.update(1, peaked(HAPPY), t).label == "happy"
        assert s.update(2, peaked(SAD), t).label == "sad"
    assert len(s) == 2 and 1 in s
    s.drop(1)
    s.drop(12345)  # unknown ids are ignored
    assert len(s) == 1 and 1 not in s
    r = s.update(1, peaked(SAD), 2.0)  # a fresh start: no memory of 'happy'
    assert r.label == "sad" and not r.stable and r.stable_for == 0.0
    s.reset()
    assert len(s) == 0


# ---------------------------------------------------------------- validation

def test_wrong_number_of_probabilities_names_both_numbers():
    s = smoother()
    with pytest.raises(FerError, match=r"got 3 probabilities.*7 classes"):
        s.update(1, np.array([0.2, 0.3, 0.5]), 0.0)
    with pytest.raises(FerError):
        s.update(1, np.ones((1, 7)) / 7, 0.0)  # a batch, not one face


def test_non_finite_input_is_rejected_and_state_untouched():
    s = smoother()
    s.update(1, peaked(HAPPY), 0.0)
    bad = peaked(SAD)
    bad[0] = np.nan
    with pytest.raises(FerError, match="NaN"):
        s.update(1, bad, 0.1)
    with pytest.raises(FerError, match="stamp"):
        s.update(1, peaked(SAD), float("nan"))
    r = s.update(1, peaked(HAPPY), 0.2)
    assert np.all(np.isfinite(r.probabilities)) and r.label == "happy"


def test_class_names_checked():
    with pytest.raises(FerError):
        EmotionSmoother(SmootherConfig(), [])
    with pytest.raises(FerError, match="unique"):
        EmotionSmoother(SmootherConfig(), ["happy", "happy"])


# ---------------------------------------------------------------- flips, flicker, sustained change

def test_one_frame_flip_is_suppressed():
    s = smoother(method="ema", window=1.0, hysteresis=0.5)
    before = None
    for k, t in enumerate(stamps(30, 0.0, 4.0)):
        flip = k == 60
        r = s.update(1, peaked(SAD if flip else HAPPY), t)
        if k >= 1:
            assert r.label == "happy"
        if flip:
            moved = np.abs(r.probabilities - before).max()
            # One 1/30 s sample moves an EMA with a 1 s time constant by 1 - exp(-1/30) of the jump.
            assert moved == pytest.approx((1 - math.exp(-1 / 30)) * (0.9 - 0.1 / 6), rel=1e-4)
            assert moved < 0.03
        before = r.probabilities


def test_one_frame_flip_is_suppressed_by_hysteresis_alone():
    s = smoother(window=0.0, hysteresis=0.5)  # no smoothing: the candidate does flip
    labels = [s.update(1, peaked(SAD if k == 30 else HAPPY), k / 30).label for k in range(90)]
    assert set(labels) == {"happy"}


def test_sustained_change_switches_after_hysteresis_and_not_before_without_smoothing():
    change_at, hysteresis = 2.0, 0.5
    t_switch, out = switch_time(30, change_at, window=0.0, hysteresis=hysteresis)
    assert t_switch == pytest.approx(change_at + hysteresis, abs=1e-9)
    for t, r in out[:-1]:
        assert r.label == "happy"
    assert out[-1][1].stable is True  # the new label already held for the hysteresis time
    assert out[-1][1].stable_for == pytest.approx(hysteresis, abs=1e-9)


@pytest.mark.parametrize("method", ["ema", "window"])
def test_switch_time_is_set_by_stamps_not_frame_rate(method):
    change_at, hysteresis, window = 3.0, 0.5, 1.0
    t30, _ = switch_time(30, change_at, method=method, window=window, hysteresis=hysteresis)
    t10, _ = switch_time(10, change_at, method=method, window=window, hysteresis=hysteresis)
    assert abs(t30 - t10) <= 0.1 + 1e-9  # within one frame at 10 fps
    # The smoothed 'sad' overtakes 'happy' halfway through the step: after tau*ln 2 for the EMA,
    # after window/2 for the moving average. Then the hysteresis runs.
    crossing = window * math.log(2) if method == "ema" else window / 2
    assert t30 == pytest.approx(change_at + crossing + hysteresis, abs=1 / 30 + 1e-9)


def test_sustained_change_not_accepted_before_hysteresis_time_by_stamps():
    s = smoother(method="ema", window=0.5, hysteresis=1.0)
    first_sad_candidate = None
    for t in stamps(25, 0.0, 6.0):
        r = s.update(1, peaked(HAPPY if t < 2.0 else SAD), t)
        if first_sad_candidate is None and r.probabilities[SAD] > r.probabilities[HAPPY]:
            first_sad_candidate = t
        if r.label == "sad":
            assert t - first_sad_candidate >= 1.0 - 1e-9
            assert t - first_sad_candidate < 1.0 + 1 / 25
            return
        assert first_sad_candidate is None or t - first_sad_candidate < 1.0
    raise AssertionError("never switched")


@pytest.mark.parametrize("window", [0.0, 0.3, 1.0])
def test_flicker_every_frame_never_switches(window):
    s = smoother(method="ema", window=window, hysteresis=0.2)
    for k in range(600):
        r = s.update(1, peaked(HAPPY if k % 2 == 0 else SAD, 0.8), k / 30)
        assert r.label == "happy"
    assert r.stable and r.stable_for == pytest.approx(599 / 30)


def test_flicker_does_switch_without_hysteresis():
    s = smoother(window=0.0, hysteresis=0.0)
    labels = [s.update(1, peaked(HAPPY if k % 2 == 0 else SAD), k / 30).label for k in range(10)]
    assert labels == ["happy", "sad"] * 5


def test_switch_back_before_hysteresis_cancels_the_pending_label():
    s = smoother(window=0.0, hysteresis=0.5)
    seq = [(0.0, HAPPY), (1.0, SAD), (1.4, SAD), (1.45, HAPPY), (1.5, SAD), (1.9, SAD), (2.0, SAD)]
    labels = [s.update(1, peaked(i), t).label for t, i in seq]
    # sad's clock restarts at 1.5 after the interruption at 1.45: adopted at 2.0, not at 1.5.
    assert labels == ["happy"] * 6 + ["sad"]


# ---------------------------------------------------------------- confidence threshold

def test_low_confidence_input_is_uncertain():
    s = smoother(confidence_threshold=0.4, hysteresis=0.5)
    flat = np.array([0.1, 0.1, 0.1, 0.25, 0.15, 0.15, 0.15])
    r = s.update(1, flat, 0.0)
    assert r.label == UNCERTAIN
    assert r.confidence == pytest.approx(0.25)  # uncertain reports the top smoothed probability
    for t in stamps(30, 0.0, 3.0)[1:]:
        r = s.update(1, flat, t)
        assert r.label == UNCERTAIN
    assert r.stable


def test_confidence_fading_below_threshold_becomes_uncertain_after_hysteresis():
    s = smoother(window=0.0, confidence_threshold=0.5, hysteresis=0.5)
    assert s.update(1, peaked(HAPPY, 0.9), 0.0).label == "happy"
    weak = peaked(HAPPY, 0.45)
    r = s.update(1, weak, 1.0)
    assert r.label == "happy" and r.confidence == pytest.approx(0.45)  # held, pending uncertain
    assert s.update(1, weak, 1.49).label == "happy"
    assert s.update(1, weak, 1.5).label == UNCERTAIN


def test_confidence_is_smoothed_probability_of_published_label():
    s = smoother(window=0.0, hysteresis=10.0)
    s.update(1, peaked(HAPPY), 0.0)
    r = s.update(1, peaked(SAD, 0.7), 0.1)  # sad leads but is not published yet
    assert r.label == "happy"
    assert r.confidence == pytest.approx(0.3 / 6)


# ---------------------------------------------------------------- the smoothing itself

def test_ema_with_irregular_dt_matches_closed_form():
    # A step from y to x at t0: whatever the sampling, smoothed(t) = x + (y - x) * exp(-(t - t0) / tau).
    tau, t0 = 0.8, 5.0
    y, x = peaked(NEUTRAL, 0.7), peaked(SAD, 0.6)
    s = smoother(method="ema", window=tau, hysteresis=0.0, confidence_threshold=0.0)
    s.update(1, y, t0)
    rng = np.random.default_rng(0)
    t = t0
    for dt in rng.exponential(0.07, size=60):  # gaps from microseconds to a few tenths of a second
        t += dt
        r = s.update(1, x, t)
        expected = x + (y - x) * math.exp(-(t - t0) / tau)
        np.testing.assert_allclose(r.probabilities, expected, rtol=1e-5, atol=1e-6)


def test_ema_single_step_alpha():
    s = smoother(method="ema", window=2.0)
    a, b = peaked(HAPPY), peaked(SAD)
    s.update(1, a, 0.0)
    r = s.update(1, b, 0.5)
    alpha = 1 - math.exp(-0.5 / 2.0)
    np.testing.assert_allclose(r.probabilities, a + alpha * (b - a), rtol=1e-6)


def test_window_zero_means_no_smoothing():
    for method in ("ema", "window"):
        s = smoother(method=method, window=0.0)
        s.update(1, peaked(HAPPY), 0.0)
        r = s.update(1, peaked(SAD, 0.6), 0.01)
        np.testing.assert_allclose(r.probabilities, peaked(SAD, 0.6), rtol=1e-6)


def test_window_averages_exactly_the_samples_within_the_window():
    window = 0.5
    s = smoother(method="window", window=window, hysteresis=0.0)
    rng = np.random.default_rng(3)
    history, checked = [], 0
    t = 0.0
    for _ in range(300):
        t += float(rng.uniform(0.005, 0.25))  # irregular frame gaps
        probs = rng.dirichlet(np.ones(len(CLASSES)))
        history.append((t, probs))
        r = s.update(1, probs, t)
        if any(abs(t - ts - window) < 1e-4 for ts, _ in history):
            continue  # a sample right on the edge: either answer would be defensible
        inside = [p for ts, p in history if t - ts < window]
        np.testing.assert_allclose(r.probabilities, np.mean(inside, axis=0), rtol=1e-5, atol=1e-7)
        checked += 1
    assert checked > 280


# ---------------------------------------------------------------- awkward stamps

@pytest.mark.parametrize("method", ["ema", "window"])
@pytest.mark.parametrize("window", [0.0, 0.5])
def test_equal_and_backward_stamps_produce_no_nan(method, window):
    s = smoother(method=method, window=window, hysteresis=0.3)
    seq = [0.0, 0.0, 0.0, 0.1, 0.1, 0.05, -3.0, 0.2, 0.2]
    for k, t in enumerate(seq):
        r = s.update(1, peaked(HAPPY if k % 3 else SAD), t)
        assert np.all(np.isfinite(r.probabilities))
        assert math.isfinite(r.confidence) and r.stable_for >= 0.0
        assert np.isclose(r.probabilities.sum(), 1.0, atol=1e-5)


def test_equal_stamps_do_not_advance_time_for_ema():
    s = smoother(method="ema", window=1.0, hysteresis=0.0)
    s.update(1, peaked(HAPPY), 1.0)
    r = s.update(1, peaked(SAD), 1.0)  # dt = 0: alpha = 0
    np.testing.assert_allclose(r.probabilities, peaked(HAPPY), rtol=1e-6)


def test_backward_jump_is_no_time_then_the_clock_carries_on():
    # A bag that loops jumps from 60 s back to 0 s; the track's clock must not freeze until the
    # stamps catch up again: hysteresis still takes 0.5 s of new stamps.
    s = smoother(window=0.0, hysteresis=0.5)
    for k in range(11):  # 59.0 ... 60.0 s
        s.update(1, peaked(HAPPY), 59.0 + k / 10)
    r = s.update(1, peaked(SAD), 0.0)
    assert r.label == "happy" and r.stable_for == pytest.approx(1.0)  # no time passed on the jump
    labels = {t: s.update(1, peaked(SAD), t).label for t in (0.1, 0.2, 0.3, 0.4, 0.5)}
    assert labels == {0.1: "happy", 0.2: "happy", 0.3: "happy", 0.4: "happy", 0.5: "sad"}


# ---------------------------------------------------------------- live settings

def test_live_config_changes_apply_on_the_next_update():
    config = SmootherConfig(method="ema", window=0.0, hysteresis=30.0, confidence_threshold=0.4)
    s = EmotionSmoother(config, CLASSES)
    s.update(1, peaked(HAPPY), 0.0)
    assert s.update(1, peaked(SAD), 0.1).label == "happy"  # held by the long hysteresis
    config.hysteresis = 0.0
    assert s.update(1, peaked(SAD), 0.2).label == "sad"
    config.confidence_threshold = 0.95
    assert s.update(1, peaked(SAD), 0.3).label == UNCERTAIN
    config.confidence_threshold = 0.4
    config.window = 10.0
    r = s.update(1, peaked(HAPPY), 0.4)  # a long time constant: one sample barely moves it
    assert r.label == "sad" and r.probabilities[SAD] > 0.85
    # The sample window is kept under either method, pruned to the window length in force at each
    # update: with window 0 until 0.3 s only the 0.3 s sample survived; since then it is 10 s.
    config.method = "window"
    history = [peaked(SAD), peaked(HAPPY), peaked(HAPPY)]  # stamps 0.3, 0.4, 0.5
    r = s.update(1, peaked(HAPPY), 0.5)
    np.testing.assert_allclose(r.probabilities, np.mean(history, axis=0), rtol=1e-6)


def test_bad_method_is_reported():
    config = SmootherConfig()
    s = EmotionSmoother(config, CLASSES)
    config.method = "median"
    with pytest.raises(FerError, match="ema or window"):
        s.update(1, peaked(HAPPY), 0.0)
    assert len(s) == 0  # nothing half-done was stored


def test_window_memory_is_bounded():
    from fer_ros.perception.smoothing import MAX_WINDOW_SAMPLES

    s = smoother(method="window", window=60.0)
    rng = np.random.default_rng(4)
    inputs = rng.dirichlet(np.ones(len(CLASSES)), size=2 * MAX_WINDOW_SAMPLES + 100)
    for k, probs in enumerate(inputs):
        r = s.update(1, probs, k * 1e-4)  # 10 kHz: far more samples than the cap
    assert len(s._tracks[1].samples) == MAX_WINDOW_SAMPLES
    # The window is then the newest MAX_WINDOW_SAMPLES samples, and the running sum is still exact.
    np.testing.assert_allclose(r.probabilities, inputs[-MAX_WINDOW_SAMPLES:].mean(axis=0), rtol=1e-6)
