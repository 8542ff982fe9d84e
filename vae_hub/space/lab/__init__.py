"""The Space's lab: latent maps, an autoencoder beside its VAE twin, posterior collapse, and a model trained live."""
