"""tlgan: transparent latent-space control of pretrained GANs."""

__version__ = "0.1.0"
