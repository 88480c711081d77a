"""What a singleton loop asks before acting (``csms.cluster.lease`` answers it per node)."""

from __future__ import annotations

from collections.abc import Callable

Elected = Callable[[], bool]
"""Does this node run the loop now?"""


def always() -> bool:
    """A loop's default: elected (a single process)."""
    return True
