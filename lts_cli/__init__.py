"""lts: Lightweight Transformer Search for GPT-2 decoders on the hardware you deploy on."""

__version__ = "0.1.0"
