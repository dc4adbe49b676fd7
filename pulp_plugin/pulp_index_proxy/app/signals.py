"""When a Python repository version is completed, announce its added packages to index-proxy."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver
from pulp_python.app.models import PythonPackageContent
from pulpcore.plugin.models import RepositoryVersion

from pulp_index_proxy.app.notify import Notification, deliver_in_background, hook_url

log = logging.getLogger("pulp_index_proxy")


def _configured() -> tuple[str, str] | None:
    url = getattr(settings, "INDEX_PROXY_URL", None)
    index = getattr(settings, "INDEX_PROXY_INDEX", None)
    if not url:
        return None
    if not index:
        log.error(
            "INDEX_PROXY_URL is set but INDEX_PROXY_INDEX is not: name this Pulp's index in index-proxy"
        )
        return None
    return str(url), str(index)


@receiver(post_save, sender=RepositoryVersion, dispatch_uid="pulp_index_proxy_repository_version")
def repository_version_saved(sender: Any, instance: RepositoryVersion, created: bool, **kwargs: Any) -> None:
    # A version is saved incomplete when it is made and once more, complete, when its content is
    # final (RepositoryVersion.__exit__); only that second save says what it added.
    if created or not instance.complete:
        return
    configured = _configured()
    if configured is None:
        return
    try:
        repository = instance.repository
        if repository.pulp_type != "python.python":
            return
        wanted = getattr(settings, "INDEX_PROXY_REPOSITORIES", None) or []
        if wanted and repository.name not in wanted:
            return
        files = list(
            PythonPackageContent.objects.filter(pk__in=instance.added()).values_list("name", "filename")
        )
    except Exception:
        # Whatever goes wrong here must not fail the task that made the version.
        log.exception("index-proxy: cannot list the packages added by %s", instance.pk)
        return
    if not files:
        return
    url, index = configured
    notification = Notification(hook_url(url), getattr(settings, "INDEX_PROXY_TOKEN", None), index, files)
    timeout = float(getattr(settings, "INDEX_PROXY_TIMEOUT", 5.0))
    retries = int(getattr(settings, "INDEX_PROXY_RETRIES", 4))
    # After the commit: before it, index-proxy asking Pulp's index would not see the new files yet.
    transaction.on_commit(lambda: deliver_in_background(notification, timeout=timeout, retries=retries))
