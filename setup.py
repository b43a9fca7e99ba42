"""Build of the optional C accelerator of the TARS codec; all other metadata lives in pyproject.toml.

``optional=True``: without a C compiler (or Python headers) the build of the extension fails quietly and k8stars
installs as pure Python; ``k8stars.tars.codec`` then uses its reference implementation.
"""

from setuptools import Extension, setup  # type: ignore[import-untyped,unused-ignore]

setup(
    ext_modules=[
        Extension(
            "k8stars.tars._speedups",
            ["k8stars/tars/_speedups.c"],
            optional=True,
        )
    ]
)
