"""pulpcore plugin: notifies index-proxy when Python packages are added to a repository version."""

default_app_config = "pulp_index_proxy.app.PulpIndexProxyPluginAppConfig"
