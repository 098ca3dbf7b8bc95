"""Per-channel normalisation constants for RGB pixels in [0, 1]: a model computes ``(x - mean) / std``."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
"""Mean of ImageNet's training pixels per channel (R, G, B)."""

IMAGENET_STD = (0.229, 0.224, 0.225)
"""Standard deviation of ImageNet's training pixels per channel (R, G, B)."""
