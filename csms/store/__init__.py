"""Durable storage behind the ``Store`` port: SQLite by default, PostgreSQL when scaled out.

One module per concern, all over one ``engine.Database`` (engine, migrations, SQLite's writer
turn, the fixed-SQL runner of ``direct``):

- ``stations``: stations, connector states, device variables, last seen, id tags;
- ``transactions``: 1.6 starts/stops and 2.0.1 events, deciding with ``csms.core.transactions``
  and committing through ``group_commit``;
- ``security``: credentials (served from memory by ``credentials``), password rotations,
  certificates, security events;
- ``schema``: tables and migrations.

Callers get one object: ``sql.SqlStore.open(db)`` composes the three parts and exposes each
port method as the owning part's bound method. One object keeps the composition root and the
CLI unchanged and gives the ``Store`` and ``SecurityStore`` ports a single implementation with
one close; the parts stay reachable (``store.transactions``...) for tests and tools.
"""
