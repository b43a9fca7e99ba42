"""The framework IDLs of TARS (and K8STARS's registry interface), compiled by ``k8stars tars2py``.

The ``.tars`` files beside this module are the source; ``tests/tars/test_idl.py`` checks the modules are current.
Generated modules import the codec, :mod:`k8stars.tars.interface` and the bases of :mod:`k8stars.tars.stub`, never
the runtime (:mod:`k8stars.tars.rpc` uses them: ``tests/tars/test_layers.py``).
Regenerate with ``k8stars tars2py k8stars/tars/protocol/*.tars -o k8stars/tars/protocol``.
"""
