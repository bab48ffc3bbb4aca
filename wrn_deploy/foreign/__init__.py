"""Checkpoints that other libraries wrote (torchvision, timm, the PyTorch WRN ports), turned into
wrn-deploy checkpoints: ``read`` takes their tensors (never their code), ``layouts`` maps their key
names onto wrn-deploy's networks, ``metadata`` finds their classes and preprocessing, ``convert``
writes the checkpoint and its card."""
