"""Real test parts on loopback: built distributions, upstream index servers, the proxy, real clients.

Imported as ``support`` (pytest puts ``tests/`` on sys.path because ``tests/conftest.py`` lives there).
"""

from .proxy import RunningProxy, start_proxy
from .upstream import FolderIndex, RecordedRequest, UpstreamServer
from .wheels import build_sdist, build_wheel

__all__ = [
    "FolderIndex",
    "RecordedRequest",
    "RunningProxy",
    "UpstreamServer",
    "build_sdist",
    "build_wheel",
    "start_proxy",
]
