"""The README.md of a deployed Space: the front matter Hugging Face reads, and how to use the Space from code."""

from __future__ import annotations

from huggingface_hub import SpaceCard, SpaceCardData

BODY = """
# {title}

A [vae-hub](https://github.com/vae-hub/vae-hub) Space: sample, reconstruct, interpolate and explore Variational
Autoencoders in the browser. Models: {model_list}.

## From code (gradio_client)

Every input but the essential ones has a default (the model shown first, 16 samples, temperature 1, seed 0, ...):

```python
from gradio_client import Client, handle_file

client = Client("{space_id}")
grid = client.predict(api_name="/generate")                                   # PNG of 16 prior samples
grid = client.predict(n=8, temperature=0.7, seed=3, api_name="/generate")
seen, recon, posterior, elbo, kl = client.predict(upload=handle_file("shoe.png"), api_name="/reconstruct")
strip = client.predict(seed_a=1, seed_b=2, steps=8, api_name="/interpolate")  # between two prior draws
image = client.predict(z_text="0.5, -1.0, ...", api_name="/decode")           # one number per latent dimension
client.predict("user/another-vae", api_name="/load_model")                    # any vae-hub model on the Hub
```

`client.view_api()` lists each endpoint with its inputs, defaults and what it returns.

## As tools for AI agents (MCP)

The Space serves its endpoints as MCP tools (Gradio's MCP server). Add it to an MCP client, e.g. in its
`mcpServers` settings:

```json
{{"mcpServers": {{"vae-hub": {{"url": "https://{subdomain}.hf.space/gradio_api/mcp/"}}}}}}
```

The tools (`generate`, `reconstruct`, `interpolate`, `decode`, `load_model`) return images as images.

Built with `vae-hub space deploy`: `app.py` is the whole app, `vae_hub/` the package, `models.json` the models.
"""


def space_card(title: str, space_id: str, gradio_version: str, repos: list[str], bundled: list[str]) -> str:
    """README.md for the Space ``space_id`` showing the Hub models ``repos`` (its ``models:``) and ``bundled`` ones."""
    data = SpaceCardData(
        title=title, sdk="gradio", sdk_version=gradio_version, app_file="app.py", models=sorted(set(repos)) or None,
        emoji="🌀", colorFrom="indigo", colorTo="pink", pinned=False,
        tags=["vae", "variational-autoencoder", "mcp-server"],
        short_description="Sample, reconstruct, interpolate and explore trained VAEs",
    )  # fmt: skip
    listed = [f"[{r}](https://huggingface.co/{r})" for r in repos] + [f"`{b}` (in `models/`)" for b in bundled]
    subdomain = space_id.lower().replace("/", "-").replace("_", "-").replace(".", "-")
    body = BODY.format(title=title, space_id=space_id, model_list=", ".join(listed), subdomain=subdomain)
    return str(SpaceCard(f"---\n{data.to_yaml()}\n---\n{body}"))
