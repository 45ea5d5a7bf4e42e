"""A domain operation that cannot be done as asked, with the catalog key that says why."""

from models.messages import Param


class Refused(Exception):
    """Raised by an operation refusing its request; ``key`` and ``params`` are the text the
    caller shows (``invite.no_post``, ``invite.already_held``…)."""

    def __init__(self, key: str, **params: Param) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
