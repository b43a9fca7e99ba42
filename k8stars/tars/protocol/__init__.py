"""The framework IDLs of TARS (and K8STARS's registry interface), compiled by ``k8stars tars2py``.

The ``.tars`` files beside this module are the source; ``tests/tars/test_idl.py`` checks the modules are current.
Regenerate with ``k8stars tars2py k8stars/tars/protocol/*.tars -o k8stars/tars/protocol``.
"""
