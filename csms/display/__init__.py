"""2.0.1 display messages and variable monitoring by hand: the pure rules (``rules``), the service
(``service``) and the plugin. Import from the submodules; the package re-exports nothing.
"""
