from django.core.exceptions import ValidationError


class StaleEditError(Exception):
    """A save was based on an older version than the one stored."""


class ReferencedError(Exception):
    """An object cannot be deleted while others refer to it."""


class InvalidContent(ValidationError):
    """Content that breaks the schema.org vocabulary or the brand's rules."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__([str(p) for p in self.problems])


class WorkflowError(Exception):
    """An action that the object's state does not allow."""
