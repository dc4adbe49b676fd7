"""Delivery of one notification to index-proxy, with bounded retries; standard library only.

Runs in a background thread started after the transaction commits, so an index-proxy that is down
or slow never fails or holds up the upload: failures are logged and dropped (index-proxy's own
polling of Pulp, when configured, catches up).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["Notification", "deliver", "deliver_in_background", "hook_url"]

log = logging.getLogger("pulp_index_proxy")

_HOOK_PATH = "api/v1/hooks/new-files"
_BACKOFF_CAP = 8.0


@dataclass(frozen=True)
class Notification:
    url: str
    token: str | None
    index: str
    files: Sequence[tuple[str, str]]
    """(project, filename) pairs."""

    def body(self) -> bytes:
        files = [{"project": project, "filename": filename} for project, filename in self.files]
        return json.dumps({"index": self.index, "files": files}).encode()


def hook_url(base_url: str) -> str:
    return base_url.rstrip("/") + "/" + _HOOK_PATH


def _attempt(notification: Notification, timeout: float) -> tuple[bool, str]:
    """(done, what happened); done is True on success and on answers a retry cannot change."""
    headers = {"Content-Type": "application/json", "User-Agent": "pulp-index-proxy/0.1"}
    if notification.token:
        headers["Authorization"] = f"Bearer {notification.token}"
    request = urllib.request.Request(notification.url, notification.body(), headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return True, f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        detail = error.read(500).decode(errors="replace")
        return error.code < 500, f"HTTP {error.code}: {detail}"
    except (OSError, ValueError) as error:  # URLError, refused, timeout, a malformed URL
        return False, f"{type(error).__name__}: {error}"


def deliver(
    notification: Notification,
    *,
    timeout: float,
    retries: int,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """POST the notification, retrying ``retries`` times; True when index-proxy accepted it."""
    for attempt in range(retries + 1):
        done, outcome = _attempt(notification, timeout)
        if done and outcome.startswith("HTTP 2"):
            log.info(
                "index-proxy notified: %s, %d file(s): %s", notification.url, len(notification.files), outcome
            )
            return True
        if done:
            log.error("index-proxy refused the notification (%s): %s", notification.url, outcome)
            return False
        if attempt < retries:
            pause = min(0.5 * 2**attempt, _BACKOFF_CAP)
            log.warning(
                "index-proxy not reached (%s): %s; retry %d/%d in %.1fs",
                notification.url,
                outcome,
                attempt + 1,
                retries,
                pause,
            )
            sleep(pause)
        else:
            log.error(
                "index-proxy not reached after %d attempt(s) (%s): %s; the files are not announced",
                retries + 1,
                notification.url,
                outcome,
            )
    return False


def deliver_in_background(notification: Notification, *, timeout: float, retries: int) -> threading.Thread:
    # Not a daemon: a task runs in a child process that exits when the task is done, and a daemon
    # thread would die with it mid-retry. The task is already recorded as completed by then; the
    # child only lingers until the bounded retries end.
    thread = threading.Thread(
        target=deliver,
        args=(notification,),
        kwargs={"timeout": timeout, "retries": retries},
        name="index-proxy-notify",
    )
    thread.start()
    return thread
