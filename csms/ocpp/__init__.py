"""OCPP-J adapter: framing, schemas, sessions and one handler module per protocol version."""
