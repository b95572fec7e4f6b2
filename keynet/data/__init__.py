"""Bundled data: ``mnist5000.npz`` (see ``LICENSE-mnist5000.md``) and the script that made it."""
