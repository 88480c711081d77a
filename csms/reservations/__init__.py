"""Reservations: an EVSE held for one id tag until it is used, cancelled or expires."""
