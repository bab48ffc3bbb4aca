"""Training: the loop, its configuration, torchrun support and the curves it draws."""
