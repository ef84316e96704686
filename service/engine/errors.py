"""Errors the engine raises for a spec it cannot run here (the HTTP layer maps them to 4xx)."""


class SpecError(ValueError):
    """The spec is valid but cannot run on this server, e.g. device=cuda without CUDA."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
