"""Security of the CSMS: station authentication (profiles 1-3), TLS, the built-in CA,
admission control against hostile clients, and operator API tokens.

    records    what the store keeps: credentials, issued certificates (a Protocol port)
    station_auth  the handshake decision for one station (sans I/O) and the password checker
    tls        server SSLContext (TLS 1.2+, OCPP suites), client-certificate identity
    ca         the CA that signs station CSRs (configured, or generated on first use)
    limits     token bucket and sliding-window counters (sans I/O)
    admission  per-IP pre-auth caps and accept-rate limiting around the WebSocket server
    passwords  salted hashes of station passwords, compared in constant time
    lifecycle  password rotation, certificate installation, redaction of secrets
    api_auth   operator API tokens with roles, failed-attempt limiting, console cookie + CSRF
    api        security routes of the operator API

The OCPP adapter builds on this package (the handshake's decision, the SignCertificate
handlers in ``csms.ocpp.certificates``); nothing here imports ``csms.ocpp``.
"""
