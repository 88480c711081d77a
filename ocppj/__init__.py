"""OCPP-J without I/O, shared by the CSMS and the simulator fleet.

Versions, frame parsing and building, CallError spelling per version, the official
schemas with 32-bit integer bounds, and timestamps. Imports neither ``csms`` nor
``simulators``; ``versions`` and ``timestamps`` use only the standard library.
"""
