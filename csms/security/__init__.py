"""Security of the CSMS: station authentication (profiles 1-3), TLS, the built-in CA,
and admission control against hostile clients.

    records    what the store keeps: credentials, issued certificates (a Protocol port)
    station_auth  the handshake decision for one station (sans I/O) and the password checker
    tls        server SSLContext (TLS 1.2+, OCPP suites), client-certificate identity
    ca         the CA that signs station CSRs (configured, or generated on first use)
    limits     token bucket and sliding-window counters (sans I/O)
    admission  per-IP pre-auth caps and accept-rate limiting around the WebSocket server
    passwords  salted hashes of station passwords, compared in constant time
    lifecycle  password rotation, certificate installation, redaction of secrets
    wiring     from ``Settings`` to the server's TLS context and CA

The adapters build on this package and not the reverse: the OCPP adapter (the handshake's
decision, the SignCertificate handlers in ``csms.ocpp.certificates``) and the operator API
(its tokens in ``csms.api.auth``, its security routes in ``csms.api.security``); nothing here
imports ``csms.ocpp`` or ``csms.api``.
"""
