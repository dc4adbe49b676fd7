"""Which database the tests' proxies get: a SQLite file each (default) or a fresh PostgreSQL database each.

``INDEX_PROXY_TEST_DATABASE=postgresql`` switches every proxy a test starts without its own
``storage:`` section to an empty database of its own on the test PostgreSQL server, dropped when the
test ends; ``make test`` runs the suite once each way. A test that writes its own ``storage:``
section follows the switch with ``fresh_databases.url(tmp_path)`` (fixture in conftest). Tests about
one database in particular (URL parsing, the store on both, workers sharing PostgreSQL) name their
database and are unaffected.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal, cast

from support.postgres import PostgresServer

__all__ = ["BACKEND_ENV", "Backend", "FreshDatabases", "selected_backend"]

BACKEND_ENV = "INDEX_PROXY_TEST_DATABASE"
Backend = Literal["sqlite", "postgresql"]
_BACKENDS: tuple[Backend, ...] = ("sqlite", "postgresql")


def selected_backend(environ: Mapping[str, str] | None = None) -> Backend:
    """The backend named by ``INDEX_PROXY_TEST_DATABASE``; SQLite when it is unset or empty.

    :raises ValueError: naming the variable and the accepted values, for anything else.
    """
    value = (os.environ if environ is None else environ).get(BACKEND_ENV, "").strip().lower()
    if not value:
        return "sqlite"
    if value not in _BACKENDS:
        raise ValueError(
            f"{BACKEND_ENV}={value!r} is not a test database; set it to one of {', '.join(_BACKENDS)}"
            " or leave it unset for sqlite"
        )
    return cast(Backend, value)


class FreshDatabases:
    """Empty databases for one test; :meth:`drop_all` removes the PostgreSQL ones afterwards."""

    def __init__(self, backend: Backend, server: PostgresServer | None) -> None:
        if backend == "postgresql" and server is None:
            raise ValueError("the postgresql backend needs a server")
        self.backend = backend
        self._server = server
        self._created: list[str] = []

    def for_proxy(self) -> str | None:
        """A database URL for one proxy, or ``None``: a SQLite file in the proxy's own folder."""
        if self._server is None:
            return None
        name = self._server.create_database()
        self._created.append(name)
        return self._server.dsn(name)

    def url(self, folder: Path, name: str = "proxy") -> str:
        """A database URL for a test that writes its own ``storage:``: ``<folder>/<name>.db`` or a new one."""
        return self.for_proxy() or f"sqlite:///{folder / f'{name}.db'}"

    def drop_all(self) -> None:
        """Drop every database handed out; call it after the processes using them have stopped."""
        server = self._server
        while server is not None and self._created:
            server.drop_database(self._created.pop())
