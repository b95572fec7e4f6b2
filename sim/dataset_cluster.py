"""Running :mod:`sim.dataset` on a ``dask.distributed`` cluster: the camera as a worker plugin.

The run's camera configuration and key travel to the workers inside a
:class:`CameraPlugin`, in memory, through the scheduler (which keeps registered plugins for
workers that join later); each worker builds the camera once in :meth:`CameraPlugin.setup`
and drops it in :meth:`CameraPlugin.teardown` when the run unregisters the plugin. Unlike
scattered data, a plugin is never spilled to a worker's disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from distributed import WorkerPlugin

from sim.dataset_worker import install_camera, remove_camera

if TYPE_CHECKING:
    from optics.faceplate import Key
    from sim.config import CameraConfig

__all__ = ["CameraPlugin"]


class CameraPlugin(WorkerPlugin):
    """Builds a run's camera on every worker, once.

    Parameters
    ----------
    token : str
        Random name of the run's camera (carries no information about the key).
    config : CameraConfig
        The camera configuration.
    key : Key
        The device key (secret: sent in memory only).
    """

    idempotent = False

    def __init__(self, token: str, config: CameraConfig, key: Key) -> None:
        self.token = token
        self.config = config
        self.key = key

    def setup(self, worker) -> None:
        install_camera(self.token, self.config, self.key)

    def teardown(self, worker) -> None:
        remove_camera(self.token)

    def __repr__(self) -> str:
        return f"CameraPlugin({self.token}, key {self.key.fingerprint})"
