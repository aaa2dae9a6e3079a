"""Genesis' entity unique ids (`entity.uid`, `scene.get_entity(uid=...)`): a random 32-hex-digit id, matched by its
first 7 digits (genesis-world 1.4.5's `gs.UID`)."""

from __future__ import annotations

import uuid

from ..errors import InvalidInputError

__all__ = ["UID"]


class UID:
    """A random id: `str(uid)` the 32 hex digits, `short()` the first 7, `full()` them split after the 7th."""

    def __init__(self, taken: tuple[str, ...] = ()) -> None:
        """A fresh id whose short form is not in `taken`."""
        while True:
            self.uid = uuid.uuid4().hex
            if self.short() not in taken:
                return

    def short(self) -> str:
        return self.uid[:7]

    def full(self) -> str:
        return f"{self.uid[:7]}-{self.uid[7:]}"

    def match(self, other: str, short_only: bool = False) -> bool:
        """Whether `other` is this id (its short form when `short_only`)."""
        if not isinstance(other, str):
            raise InvalidInputError(f"UID.match({other!r}): expected a str.")
        return (self.short() if short_only else self.uid) == other

    def __str__(self) -> str:
        return self.uid

    def __repr__(self) -> str:
        return f"UID('{self.full()}')"

    def __format__(self, spec: str) -> str:
        return f"<{self.short()}>"

    def __eq__(self, other) -> bool:
        return isinstance(other, UID) and other.uid == self.uid

    def __hash__(self) -> int:
        return hash(self.uid)
