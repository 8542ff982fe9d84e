"""``vae-hub space deploy``: a self-contained Space folder for your models (``folder``), uploaded in one commit."""
