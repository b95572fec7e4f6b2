"""EMVA 1288 characterisation of a (simulated) sensor.

- :mod:`optics.emva.estimators` -- the standard's estimators on frame pairs and stacks.
- :mod:`optics.emva.series` -- the measurement series on a :class:`~optics.sensor.Sensor`
  and the figures it should recover.
- :mod:`optics.emva.cli` -- ``python -m optics.emva`` (table, JSON, photon-transfer plot).

The names below are imported on first use, so that ``python -m optics.emva`` can install
its interrupt handling before numpy is imported.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from optics.emva.estimators import EMVAResult, MeasurementSeries, analyse
    from optics.emva.series import (
        characterise,
        configured_values,
        measured_values,
        simulate_series,
    )

__all__ = [
    "EMVAResult",
    "MeasurementSeries",
    "analyse",
    "characterise",
    "configured_values",
    "measured_values",
    "simulate_series",
]

_WHERE = {
    "EMVAResult": "optics.emva.estimators",
    "MeasurementSeries": "optics.emva.estimators",
    "analyse": "optics.emva.estimators",
    "characterise": "optics.emva.series",
    "configured_values": "optics.emva.series",
    "measured_values": "optics.emva.series",
    "simulate_series": "optics.emva.series",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'optics.emva' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
