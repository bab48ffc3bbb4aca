"""Names shared across the package, free of heavy imports so the CLI can use them at start-up."""

DATASETS = ("synthetic", "cifar10", "cifar100", "svhn", "imagenet", "imagefolder")
