"""cffi build script of the card kernel (API mode), run by ``setup.py``'s ``cffi_modules``.

The declarations come from ``card_kernel.h`` - the header ``card_kernel.c`` includes - so
the compiler checks the C definitions against them, and cffi checks every Python call.
No fast-math and no fused multiply-add: the kernel rounds exactly as the reference in the
tests. Warnings that would hide a mismatch are errors.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
HEADER = HERE / "card_kernel.h"


def declarations(header: Path = HEADER) -> str:
    """The header without its preprocessor lines (cffi's parser reads declarations only)."""
    return "\n".join(
        line for line in header.read_text().splitlines() if not line.lstrip().startswith("#")
    )


ffibuilder = FFI()
ffibuilder.cdef(declarations())
ffibuilder.set_source(
    "features._card_kernel",
    '#include "card_kernel.h"',
    sources=["features/card_kernel.c"],
    include_dirs=["features"],
    libraries=["m"],
    extra_compile_args=[
        "-O2",
        "-ffp-contract=off",
        "-fno-fast-math",
        "-std=c99",
        "-Werror=implicit-function-declaration",
        "-Werror=incompatible-pointer-types",
        "-Werror=int-conversion",
    ],
)
