"""Tariffs and the price of charging sessions (OCPI 2.2.1-shaped, exact decimals)."""
