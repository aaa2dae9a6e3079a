"""Exceptions raised by genesis-torch.

Every public function raises one of these for bad input; the message says what was wrong and what to do.
A call that raises leaves the scene exactly as it was.
"""

__all__ = [
    "GenesisError",
    "InvalidInputError",
    "SceneStateError",
    "UnsupportedFeatureError",
    "CheckpointError",
    "UnsafeCheckpointError",
    "IncompatibleCheckpointError",
]


class GenesisError(Exception):
    """Base class of every error genesis-torch raises on purpose."""


class InvalidInputError(GenesisError, ValueError):
    """An argument has the wrong type, shape, dtype, range or value (NaN, out-of-range index, unknown option)."""


class SceneStateError(GenesisError, RuntimeError):
    """The call is not valid in the scene's current phase (e.g. stepping before `build()`, adding after it)."""


class UnsupportedFeatureError(GenesisError, NotImplementedError):
    """The model uses a feature (an MJCF element or attribute, a material option) this version does not simulate."""


class CheckpointError(GenesisError, IOError):
    """A checkpoint file cannot be read or written: missing, truncated, corrupt, or holding invalid values."""


class UnsafeCheckpointError(CheckpointError):
    """A pickle checkpoint references something other than NumPy arrays and plain containers; nothing was run."""


class IncompatibleCheckpointError(CheckpointError):
    """A valid checkpoint that belongs to a different scene: other fingerprint, keys, shapes, dtypes or n_envs."""


class ContactOverflowError(GenesisError, RuntimeError):
    """More contacts in an env than `RigidOptions(max_collision_pairs=...)` holds; the step was not applied."""
