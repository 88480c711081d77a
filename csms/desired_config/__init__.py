"""Desired configuration per station group, applied at boot and on change, with drift reports."""
