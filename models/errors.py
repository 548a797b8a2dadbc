"""The one exception ``models`` raises; ``monitor`` maps it to exit code 2."""


class ModelLoadError(Exception):
    """A model, tokenizer or trained head cannot be loaded or does not fit together."""
