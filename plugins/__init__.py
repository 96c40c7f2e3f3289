"""Built-in plugins: one feature per module.  The default set is
:data:`swain.core.plugins.DEFAULT_PLUGINS`; any can be disabled with
``[plugins] disable = [...]``."""
