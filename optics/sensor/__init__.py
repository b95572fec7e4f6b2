"""CMOS sensor and ADC after the EMVA 1288 linear camera model (Release 4.0, 2021).

- :mod:`optics.sensor.config` -- :class:`SensorConfig` and the :data:`PRESETS`.
- :mod:`optics.sensor.model` -- :class:`Sensor`: ``expose`` (frames with every noise source),
  ``affine`` / ``mean_dn`` (the expected signal), saturation figures.
- :mod:`optics.sensor.sampling` -- the random variates behind ``expose``.

Its characterisation after the standard lives in :mod:`optics.emva`.
"""

from optics.sensor.config import PRESETS, SensorConfig
from optics.sensor.model import EXACT_POISSON_BELOW_E, Sensor

__all__ = ["EXACT_POISSON_BELOW_E", "PRESETS", "Sensor", "SensorConfig"]
