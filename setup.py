"""Builds the card kernel's C library (features/card_kernel.c); the rest is pyproject.toml.

The library has no Python API: :mod:`features.card_kernel` loads it with ctypes. No
fast-math and no fused multiply-add, so it rounds exactly as the reference in the tests.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "features._card_kernel",
            ["features/card_kernel.c"],
            extra_compile_args=["-O2", "-ffp-contract=off", "-fno-fast-math", "-std=c99"],
            libraries=["m"],
        )
    ]
)
