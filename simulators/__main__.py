"""``python -m simulators``: the ``csms-sim`` command line."""

from simulators.cli import main

raise SystemExit(main())
