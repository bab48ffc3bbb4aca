"""Data: the dataset table (``table``), image sources (``sources``), batches on a device
(``batches``), and ``load_dataset`` / ``for_card`` (``load``), the one way every step gets images.

``load_dataset`` and ``for_card`` are imported lazily, so reading the table needs no torch.
"""


def __getattr__(name):
    if name in ("load_dataset", "for_card", "Dataset", "Selection"):
        from wrn_deploy.data import load

        return getattr(load, name)
    raise AttributeError(f"module 'wrn_deploy.data' has no attribute {name!r}")
