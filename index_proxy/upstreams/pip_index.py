"""Find the index that pip on this machine is configured with (``url: pip``)."""

from __future__ import annotations

import os

__all__ = ["pip_index_url"]


def pip_index_url() -> str:
    """``PIP_INDEX_URL``, else pip's configured ``index-url``, else pip's built-in default.

    Read through pip's own configuration loader so that every file pip reads (global, user,
    site, ``PIP_CONFIG_FILE``) counts, in pip's order.
    """
    from_env = os.environ.get("PIP_INDEX_URL")
    if from_env:
        return from_env.split()[0]
    try:
        from pip._internal.configuration import Configuration
        from pip._internal.models.index import PyPI

        configuration = Configuration(isolated=False)
        configuration.load()
        for key in ("install.index-url", "global.index-url", ":env:.index-url"):
            try:
                value = configuration.get_value(key)
            except Exception:  # pip raises ConfigurationError for a missing key
                continue
            if isinstance(value, str) and value:
                return value.split()[0]
        return PyPI.simple_url
    except ImportError as error:
        raise RuntimeError(
            "url: pip needs pip installed to find its configured index; set the index url explicitly"
        ) from error
