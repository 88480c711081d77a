"""The OCPP versions spoken over OCPP-J, named by their WebSocket subprotocol.

A standard-library-only leaf: the CSMS domain model, the protocol code and the
simulator fleet all import it, and it imports nothing of theirs.
"""

from __future__ import annotations

import enum


class OcppVersion(enum.StrEnum):
    """The WebSocket subprotocol a station negotiated."""

    V16 = "ocpp1.6"
    V201 = "ocpp2.0.1"
