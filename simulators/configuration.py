"""Which configuration changes the virtual charger takes only at its next reboot.

It keeps the new value at once (a read reports it), but answers ``RebootRequired``: connection
settings such as the WebSocket ping interval apply to the next connection.
"""

from __future__ import annotations

REBOOT_REQUIRED_KEYS = frozenset({"WebSocketPingInterval"})  # 1.6 ChangeConfiguration keys
# 2.0.1 (component, variable) pairs
REBOOT_REQUIRED_VARIABLES = frozenset({("OCPPCommCtrlr", "WebSocketPingInterval")})


def key_status(key: str) -> str:
    """The 1.6 answer to an accepted change of ``key``."""
    return "RebootRequired" if key in REBOOT_REQUIRED_KEYS else "Accepted"


def variable_status(component: str, variable: str) -> str:
    """The 2.0.1 answer to an accepted change of ``component``/``variable``."""
    return "RebootRequired" if (component, variable) in REBOOT_REQUIRED_VARIABLES else "Accepted"
