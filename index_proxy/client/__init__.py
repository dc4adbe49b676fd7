"""The client side of ``index-proxy``: describe this machine (``env``) and lock through a server (``lock``).

Kept apart from the server modules: a client run imports neither the app nor the store, only
packaging, httpx, archspec (when installed) and the resolver's pure schema modules
(``resolver.environment``, ``resolver.manifests``), so it checks its input with the server's own
rules and reports problems before sending anything.
"""
