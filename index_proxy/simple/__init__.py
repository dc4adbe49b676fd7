"""The simple repository API (PEP 503, 691, 700, 658/714) as pure data: parse, model, render.

Nothing here does I/O: parsers take bytes and the URL they came from, renderers return bytes.
"""
