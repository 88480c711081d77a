"""Core nodes sharing one database: which node runs each singleton loop (``csms.cluster.lease``)."""
