"""keycam's small core: plumbing that every package may use, and no physics.

- :mod:`keycam.cli` -- the command-line runner (one ``error:`` line and exit 2 for bad input,
  Ctrl-C/SIGTERM handling from start-up on, quiet broken pipes, progress bars only on a
  terminal).
- :mod:`keycam.fileio` -- atomic writing of one file; secrets with mode 0600.
- :mod:`keycam.outputs` -- :class:`~keycam.outputs.OutputSet`: every output of a run written
  all or nothing, never over an input.
- :mod:`keycam.loading` -- bounded readers: regular files only, size and nesting limits,
  TOML and JSON parsed only after those checks.
- :mod:`keycam.limits` -- the documented limits and the memory budget
  (``KEYCAM_MAX_MEMORY_MB``) checked before allocation.
- :mod:`keycam.config` -- the base of every configuration model, and error messages that
  never leak secret fields.
- :mod:`keycam.signals` -- the interrupt state shared by the runner and the output writer.

Import direction: ``keycam`` <- ``optics`` <- ``sim`` <- ``keynet``, and ``optics`` <-
``fabrication``. Nothing here imports those packages.
"""
