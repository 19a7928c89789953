"""`python -m fer_ros` is the `fer-ros` command."""
import sys

from fer_ros.cli import main

sys.exit(main())
