"""OCPP 1.6J: conversions, handlers and CSMS-initiated helpers."""
