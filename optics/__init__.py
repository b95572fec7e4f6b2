"""Physical models of the keycam privacy camera.

Pure functions and frozen pydantic configurations: the CMOS sensor (:mod:`optics.sensor`),
the lens (:mod:`optics.lens`) and the fiber-bundle faceplate with its key
(:mod:`optics.faceplate`). Nothing here plots; the only file I/O is the key file, written
through :mod:`keycam.fileio`.
"""
