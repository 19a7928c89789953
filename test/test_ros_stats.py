"""Diagnostics of the fer node: counters per window and the OK/WARN/ERROR grading."""
import threading

import pytest

from fer_ros.diagnostics import ERROR, OK, WARN, FrameStats, Thresholds

LIMITS = Thresholds(warn_latency_ms=200.0, error_latency_ms=800.0, warn_fps=5.0)


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def clock():
    return Clock()


def run_window(stats, clock, frames, latency_ms, seconds=1.0, drop_every=0):
    for i in range(frames):
        stats.received(replaced_unprocessed=bool(drop_every) and i % drop_every == 1)
        stats.processed(latency_ms, faces=1)
    clock.now += seconds


def test_healthy_window_is_ok_with_rates_and_latency(clock):
    stats = FrameStats(clock)
    run_window(stats, clock, frames=10, latency_ms=50.0, seconds=1.0)
    report = stats.report(LIMITS, device="cpu", image_topic="/cam")
    values = dict(report.values)
    assert report.level == OK
    assert values["processing_rate_hz"] == "10.00" and values["input_rate_hz"] == "10.00"
    assert values["latency_mean_ms"] == "50.0" and values["latency_max_ms"] == "50.0"
    assert values["faces"] == "1" and values["device"] == "cpu" and values["image_topic"] == "/cam"


def test_no_images_warns(clock):
    stats = FrameStats(clock)
    clock.now += 1.0
    report = stats.report(LIMITS)
    assert report.level == WARN and "no images" in report.message


@pytest.mark.parametrize("latency, level", [(150.0, OK), (300.0, WARN), (900.0, ERROR)])
def test_latency_thresholds(clock, latency, level):
    stats = FrameStats(clock)
    run_window(stats, clock, frames=10, latency_ms=latency)
    assert stats.report(LIMITS).level == level


def test_slow_processing_warns_and_zero_disables_it(clock):
    stats = FrameStats(clock)
    run_window(stats, clock, frames=3, latency_ms=10.0)
    report = stats.report(LIMITS)
    assert report.level == WARN and "3.0 fps < 5.0 fps" in report.message
    run_window(stats, clock, frames=3, latency_ms=10.0)
    assert stats.report(Thresholds(200.0, 800.0, warn_fps=0.0)).level == OK


def test_all_frames_bad_is_an_error_some_bad_a_warning(clock):
    stats = FrameStats(clock)
    for _ in range(6):
        stats.received(replaced_unprocessed=False)
        stats.bad("unsupported image encoding 'mono16'")
    clock.now += 1.0
    report = stats.report(LIMITS)
    assert report.level == ERROR and "mono16" in report.message
    run_window(stats, clock, frames=10, latency_ms=10.0)
    stats.bad("corrupt jpeg")
    report = stats.report(LIMITS)
    assert report.level == WARN and "1 bad frame(s): corrupt jpeg" in report.message
    assert dict(report.values)["bad_frames"] == "7"


def test_windows_reset_but_totals_accumulate(clock):
    stats = FrameStats(clock)
    run_window(stats, clock, frames=10, latency_ms=10.0, drop_every=2)  # frames 1, 3, 5, 7, 9 replaced one
    first = dict(stats.report(LIMITS).values)
    run_window(stats, clock, frames=10, latency_ms=30.0, seconds=2.0)
    second = dict(stats.report(LIMITS).values)
    assert first["dropped_frames_window"] == "5" and first["dropped_frames"] == "5"
    assert second["dropped_frames_window"] == "0" and second["dropped_frames"] == "5"
    assert second["processing_rate_hz"] == "5.00" and second["latency_mean_ms"] == "30.0"
    assert stats.total_processed == 20


def test_counters_are_thread_safe():
    stats = FrameStats()

    def hammer():
        for _ in range(2000):
            stats.received(replaced_unprocessed=True)
            stats.processed(1.0, faces=0)

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert (stats.total_received, stats.total_processed, stats.total_dropped) == (8000, 8000, 8000)
