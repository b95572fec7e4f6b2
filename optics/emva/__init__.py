"""EMVA 1288 characterisation of a (simulated) sensor.

- :mod:`optics.emva.estimators` -- the standard's estimators on frame pairs and stacks.
- :mod:`optics.emva.series` -- the measurement series on a :class:`~optics.sensor.Sensor`
  and the figures it should recover.
- :mod:`optics.emva.cli` -- ``python -m optics.emva`` (table, JSON, photon-transfer plot).
"""

from optics.emva.estimators import EMVAResult, MeasurementSeries, analyse
from optics.emva.series import characterise, configured_values, measured_values, simulate_series

__all__ = [
    "EMVAResult",
    "MeasurementSeries",
    "analyse",
    "characterise",
    "configured_values",
    "measured_values",
    "simulate_series",
]
