"""keycam's small core: plumbing that every package may use, and no physics.

- :mod:`keycam.cli` -- the command-line runner (one ``error:`` line and exit 2 for bad input,
  Ctrl-C handling, progress bars only on a terminal).
- :mod:`keycam.fileio` -- atomic, all-or-nothing file writing; secrets with mode 0600.

Import direction: ``keycam`` <- ``optics`` <- ``sim`` <- ``keynet``, and ``optics`` <-
``fabrication``. Nothing here imports those packages.
"""
