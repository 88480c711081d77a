"""Protocol-neutral domain core: model, events, ports and the rules of the CSMS.

Imports only the standard library; adapters (OCPP, store, API, telemetry) import it.
"""
