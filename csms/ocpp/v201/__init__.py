"""OCPP 2.0.1: conversions, handlers and CSMS-initiated helpers."""
