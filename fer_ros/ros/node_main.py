"""What every fer_ros node shares: parameter descriptors from ParamSpec and one main().

One main() so both nodes start, report a bad configuration and stop the same way: exit 1 with
one fatal log line naming the problem, exit 0 on SIGINT, SIGTERM or an external shutdown.
"""
from __future__ import annotations

from typing import Any, Callable

import rclpy
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import NameValidationException, ParameterException
from rclpy.executors import ExternalShutdownException
from rclpy.logging import get_logger
from rclpy.node import Node

from fer_ros.errors import FerError
from fer_ros.parameters.spec import ParamSpec


def descriptor(spec: ParamSpec) -> ParameterDescriptor:
    """ROS descriptor of one setting: description, range and read-only unless live."""
    d = ParameterDescriptor(description=spec.description, read_only=not spec.live)
    if spec.min is not None and spec.max is not None:
        if spec.kind == "int":
            d.integer_range = [IntegerRange(from_value=int(spec.min), to_value=int(spec.max), step=1)]
        elif spec.kind == "float":
            d.floating_point_range = [FloatingPointRange(from_value=float(spec.min), to_value=float(spec.max), step=0.0)]
    if spec.choices:
        d.additional_constraints = "one of: " + ", ".join("''" if c == "" else str(c) for c in spec.choices)
    return d


def declare(node: Node, specs: list[ParamSpec]) -> dict[str, Any]:
    """Declare every parameter with its descriptor; the values it starts with, by name."""
    for spec in specs:
        node.declare_parameter(spec.name, spec.default, descriptor(spec))
    return {spec.name: node.get_parameter(spec.name).value for spec in specs}


def main(make_node: Callable[[], Node], name: str, args: list[str] | None = None) -> int:
    """Run one node until shutdown; 1 when it cannot start (the reason is logged)."""
    rclpy.init(args=args)
    node = None
    try:
        node = make_node()
        rclpy.spin(node)
    except (FerError, ParameterException, NameValidationException) as exc:
        get_logger(name).fatal(f"cannot start: {exc}")
        return 1
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except Exception:
        if rclpy.ok():
            raise
        # SIGINT/SIGTERM shut the context down while a callback was running (a publish or a
        # graph query then fails): that is the shutdown we were asked for, not an error.
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
