"""LightGBM, imported without its optional integrations.

When pandas, scikit-learn, pyarrow or dask are installed (they are: training and Feast use
them), ``import lightgbm`` imports them all, ~150 MB of RSS in every process that loads a
model - the scorer's budget is 300 MB. The project hands LightGBM numpy arrays only, so
while LightGBM is imported those libraries, where not yet imported, are marked absent;
the marks are removed right after, so importing them later works as usual. Import
LightGBM as ``from models.lgb import lgb``.
"""

from __future__ import annotations

import sys

_EXTRAS = ("pandas", "sklearn", "dask", "pyarrow", "datatable", "graphviz", "matplotlib", "cffi")
_hidden = [name for name in _EXTRAS if name not in sys.modules]
for _name in _hidden:
    sys.modules[_name] = None  # type: ignore[assignment]
try:
    import lightgbm as lgb
finally:
    for _name in _hidden:
        if _name in sys.modules and sys.modules[_name] is None:
            del sys.modules[_name]

__all__ = ["lgb"]
