"""Charging profiles set by hand: the pure rules (``rules``), the service (``service``) and the plugin.

Import from the submodules; the package re-exports nothing.
"""
