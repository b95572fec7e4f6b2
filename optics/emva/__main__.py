"""``python -m optics.emva``: see :mod:`optics.emva.cli`."""

import sys

from keycam.cli import run


def _main(argv=None):
    from optics.emva.cli import main  # imported under run's interrupt handling

    return main(argv)


sys.exit(run(_main))
