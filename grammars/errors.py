"""The error a grammar or schema raises when an engine refuses it."""


class GrammarError(ValueError):
    def __init__(self, message: str, keywords: list[str] | None = None):
        super().__init__(message)
        self.keywords = keywords or []
