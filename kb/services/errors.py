from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


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


class PublishBlocked(WorkflowError):
    """Content with errors against a Google profile: publishing it would lose the rich result."""

    def __init__(self, obj, findings):
        self.findings = list(findings)
        listed = "; ".join(f"{f.pointer or '/'}: {f.message}" for f in self.findings)
        super().__init__(
            _("%(object)s was not published: fix these errors first — %(errors)s")
            % {"object": obj, "errors": listed}
        )
