"""What zoo keeps on disk and fetches: files, the weight format, checkpoints, the hub, publishing.

Layering (a test enforces it): ``files`` ← ``weights`` ← ``checkpoint``; ``files`` ← ``hub`` ←
``publish``. Storage imports only ``zoo.errors``, ``zoo.env`` and the plugin manager, never
training, experiments or the CLI. Nothing here is re-exported: importing ``zoo.storage.hub``
must not import torch.
"""
