"""Errors the CSMS raises across module boundaries.

    CsmsError
    ├── ConfigError                 bad configuration (message names the key and the problem)
    ├── StoreUnavailable            the database could not commit; nothing was acknowledged
    └── ControlError                a CSMS-initiated call did not produce a response
        ├── StationNotConnected     no live session for that station id
        ├── UnknownAction           the action does not exist in the station's OCPP version
        ├── PayloadInvalid          the payload failed schema validation; nothing was sent
        ├── CallTimeout             the station did not answer in time
        │   └── CallQueueTimeout    the call's turn never came (calls ahead overran); nothing was sent
        ├── CallErrorReceived       the station answered with a CALLERROR (code, description)
        └── ResponseInvalid         the station's answer failed schema validation

OCPP error codes never leave ``csms.ocpp``; third-party errors are mapped where they occur.
"""

from __future__ import annotations

from typing import Any


class CsmsError(Exception):
    """Base of every error the CSMS raises on purpose."""


class ConfigError(CsmsError):
    """The configuration (file, environment or flags) is invalid."""


class StoreUnavailable(CsmsError):
    """The store could not read or commit."""


class ControlError(CsmsError):
    """A call to a station failed before a valid response arrived."""


class StationNotConnected(ControlError):
    """The station has no live connection."""


class UnknownAction(ControlError):
    """The action is not part of the station's protocol version."""


class PayloadInvalid(ControlError):
    """The payload does not validate against the action's schema; nothing was sent."""


class CallTimeout(ControlError):
    """The station did not answer within the timeout."""


class CallQueueTimeout(CallTimeout):
    """The call waited longer for the station's earlier calls than they may take; nothing was sent."""


class ResponseInvalid(ControlError):
    """The station answered with a payload that fails the response schema."""


class CallErrorReceived(ControlError):
    """The station answered with a CALLERROR."""

    def __init__(self, code: str, description: str, details: dict[str, Any] | None = None):
        super().__init__(f"{code}: {description}")
        self.code = code
        self.description = description
        self.details = details or {}
