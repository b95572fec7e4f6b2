"""Privacy audit: what an attacker recovers of a camera's key, and with how much data.

Four adversaries, each simulated against a camera and its key with the public API, each
scored by the fraction of the routing recovered and by the correlation of the attacker's
reassembled picture with the truth -- never by printing the key:

- :mod:`~sim.audit.chosen` -- someone who can show the camera patterns (Gray codes);
- :mod:`~sim.audit.known` -- someone holding (scene, frame) pairs;
- :mod:`~sim.audit.topology` -- someone holding only a stream of frames (ciphertext only);
- :mod:`~sim.audit.keynet_structure` -- someone holding the published key-net file.

:func:`~sim.audit.run.run_audit` runs them; ``python -m sim.audit`` is the command line.
"""

from sim.audit.run import ATTACKS, plot_png, run_audit

__all__ = ["ATTACKS", "plot_png", "run_audit"]
