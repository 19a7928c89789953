#!/usr/bin/env python3
"""Cross-process figures for fer_node on a real ROS 2 graph: frames sent and answered, latency.

    ./scripts/test --co -q >/dev/null   # once: venv, colcon build (or source your ROS + install/)
    . .venv/bin/activate && . install/setup.bash && python scripts/ros_graph_bench.py [--count 40] [--json]

Each group starts the installed fer_node in its own process and ROS domain (localhost
discovery); for each case a camera process (scripts/ros_camera.py) publishes a real face at a
fixed rate, reliable or best effort, raw rgb8 or jpeg, while this process listens to /emotions
and /diagnostics. "kept" is sent minus the frames the node itself replaced by a newer one
(newest-frame-wins, reported as dropped_frames on /diagnostics); "answered" counts /emotions
messages that carry a sent frame's stamp and frame_id. Latency is from the camera's stamp to
the EmotionArray's arrival here (same machine clock). test/test_ros_graph.py runs the same
cases with fewer frames and asserts on them.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from fer_ros.measure.ros_graph import groups
from fer_ros.ros.graph_probe import Graph

HERE = Path(__file__).resolve().parent
CAMERA = HERE / "ros_camera.py"
LARGE_FRAMES_PROFILE = HERE.parent / "config" / "fastdds_large_frames.xml"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--count", type=int, default=40, help="frames per case")
    p.add_argument("--domain", type=int, default=77, help="first ROS domain id (one per group)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--groups", default="", help="comma-separated group numbers to run (default: all)")
    p.add_argument("--udp", action="store_true", help="also UDP-only transports (as between two machines), "
                                                       "default and 4 MB socket buffers (capped by net.core.rmem_max)")
    args = p.parse_args(argv)
    results = []
    udp_folder = tempfile.mkdtemp(prefix="fer_bench_") if args.udp else None
    chosen = {int(g) for g in args.groups.split(",") if g.strip()}
    for i, (profile, compressed, cases, params) in enumerate(groups(args.count, LARGE_FRAMES_PROFILE, udp_folder)):
        if chosen and i not in chosen:
            continue
        graph = Graph(CAMERA, args.domain + i, profile, compressed, *params, camera_profile=LARGE_FRAMES_PROFILE)
        if params and not args.json:
            print(f"  fer_node with {' '.join(params)}", flush=True)
        try:
            graph.wait_ready()
            for j, case in enumerate(cases):
                r = graph.run(case, f"bench_{i}_{j}")
                results.append(r.summary())
                if not args.json:
                    s = r.summary()
                    print(f"{s['case']:<54} profile={s['fastdds_profile'] or '-':<26} sent {s['sent']:>3} "
                          f"kept {s['kept']:>3} answered {s['answered']:>3} one-face {s['one_face']:>3} "
                          f"p50 {s['latency_p50_ms']:>7} ms p95 {s['latency_p95_ms']:>7} ms {s['error']}", flush=True)
        finally:
            code = graph.close()
            if not args.json:
                print(f"  fer_node exit code after SIGTERM: {code}", flush=True)
    if args.json:
        print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
