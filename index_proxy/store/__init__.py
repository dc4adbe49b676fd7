"""Persistence: the SQL database (pages, files, guard events) and the blob store (file bytes)."""
