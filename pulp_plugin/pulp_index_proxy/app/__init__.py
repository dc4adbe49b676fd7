from pulpcore.plugin import PulpPluginAppConfig


class PulpIndexProxyPluginAppConfig(PulpPluginAppConfig):
    """The plugin has no models, endpoints or migrations: only a signal receiver."""

    name = "pulp_index_proxy.app"
    label = "index_proxy"
    version = "0.1.0"  # must equal the distribution's version: pulpcore checks it at start
    python_package_name = "pulp-index-proxy"
    domain_compatible = True

    def ready(self) -> None:
        super().ready()
        from pulp_index_proxy.app import signals  # noqa: F401  - connects the receiver
