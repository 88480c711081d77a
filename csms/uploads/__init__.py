"""Diagnostics and log uploads: requests to stations, the files they upload, their progress."""
