"""The claim catalogue: one pytest test per claim (``pytest hypotheses`` in a clone).

Installed with the package as ``codi_probe.hypotheses`` (pyproject.toml maps this folder there), so that
after ``pip install codi-probe`` the same files run with ``pytest --pyargs codi_probe.hypotheses``. The
fixtures the claims use come from the plugin (:mod:`codi_probe.plugin.catalogue`).
"""
