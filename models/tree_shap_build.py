"""cffi build script of the TreeSHAP kernel (API mode), run by ``setup.py``'s
``cffi_modules``.

The declarations come from ``tree_shap.h``, the header ``tree_shap.c`` includes, so a
signature that differs between C and Python fails at build time. No fast-math: the
kernel must add up as the reference does.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HEADER = Path(__file__).resolve().parent / "tree_shap.h"

ffibuilder = FFI()
ffibuilder.cdef(
    "\n".join(line for line in HEADER.read_text().splitlines() if not line.lstrip().startswith("#"))
)
ffibuilder.set_source(
    "models._tree_shap",
    '#include "tree_shap.h"',
    sources=["models/tree_shap.c"],
    include_dirs=["models"],
    libraries=["m"],
    extra_compile_args=[
        "-O2",
        "-std=c99",
        "-ffp-contract=off",
        "-fno-fast-math",
        "-Wall",
        "-Werror",
    ],
)
