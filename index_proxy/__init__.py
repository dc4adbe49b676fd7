"""index-proxy: one safe simple index in front of many Python package indexes."""

__version__ = "0.1.0"
