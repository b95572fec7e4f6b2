"""``python -m optics.emva``: see :mod:`optics.emva.cli`."""

import sys

from keycam.cli import run
from optics.emva.cli import main

sys.exit(run(main))
