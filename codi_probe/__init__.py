"""codi-probe: pytest-driven hypothesis tests for CODI latent-reasoning models.

Main entry points: :func:`codi_probe.loading.load_codi` and :class:`codi_probe.engine.CodiEngine`.
"""

__version__ = "0.2.0"
