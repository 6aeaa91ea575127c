"""cffi build script of the payload guard (API mode), run by ``setup.py``'s ``cffi_modules``.

The declarations come from ``payload_guard.h``, the header ``payload_guard.c`` includes,
so a signature that differs between C and Python fails at build time.
"""

from __future__ import annotations

from pathlib import Path

from cffi import FFI

HEADER = Path(__file__).resolve().parent / "payload_guard.h"

ffibuilder = FFI()
ffibuilder.cdef(
    "\n".join(line for line in HEADER.read_text().splitlines() if not line.lstrip().startswith("#"))
)
ffibuilder.set_source(
    "streams._payload_guard",
    '#include "payload_guard.h"',
    sources=["streams/payload_guard.c"],
    include_dirs=["streams"],
    extra_compile_args=["-O2", "-std=c99", "-Wall", "-Werror"],
)
