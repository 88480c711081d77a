"""Durable storage behind the ``Store`` port: SQLite by default, PostgreSQL when scaled out."""
