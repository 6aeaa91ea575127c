"""Builds the C extensions with cffi in API mode: the card kernel
(features/card_kernel.c), the payload guard (streams/payload_guard.c) and the TreeSHAP
kernel (models/tree_shap.c); the rest is pyproject.toml.

Each binding's declarations are the header its C file includes, so a signature that
differs between C and Python fails here, at build time.
"""

from setuptools import setup

setup(
    cffi_modules=[
        "features/card_kernel_build.py:ffibuilder",
        "streams/payload_guard_build.py:ffibuilder",
        "models/tree_shap_build.py:ffibuilder",
    ]
)
