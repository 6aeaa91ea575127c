"""Builds the card kernel (features/card_kernel.c) with cffi in API mode; the rest is
pyproject.toml.

The binding's declarations are the header the C file includes (features/card_kernel.h),
so a signature that differs between C and Python fails here, at build time.
"""

from setuptools import setup

setup(cffi_modules=["features/card_kernel_build.py:ffibuilder"])
