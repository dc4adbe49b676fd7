"""Defaults; override them in Pulp's settings file or as PULP_<NAME> environment variables."""

INDEX_PROXY_URL = None
"""index-proxy's base URL, e.g. "http://index-proxy:8000/". Unset: the plugin does nothing."""
INDEX_PROXY_TOKEN = None
"""index-proxy's admin token (server.admin_token): the hook requires it as a bearer token."""
INDEX_PROXY_INDEX = None
"""The name of this Pulp's index in index-proxy's config (indexes[].name)."""
INDEX_PROXY_REPOSITORIES = []
"""Names of the Python repositories to report; empty: every Python repository."""
INDEX_PROXY_TIMEOUT = 5.0
"""Seconds one notification attempt may take."""
INDEX_PROXY_RETRIES = 4
"""Further attempts after a failed one (connection refused, timeout, 5xx), with growing pauses."""
