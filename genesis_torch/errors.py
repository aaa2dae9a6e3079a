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
    "ContactOverflowError",
    "SimulationDivergedError",
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


class SimulationDivergedError(GenesisError, RuntimeError):
    """Some envs' state holds NaN or inf after a step (`SimOptions(on_divergence="raise")`, the default).

    The step was applied: the diverged envs keep their non-finite values for inspection and every other env advanced
    normally. `envs_mask` is the `(B,)` bool tensor of the diverged envs; `scene.reset(envs_idx=envs_mask)` recovers.
    """

    def __init__(self, message: str, envs_mask=None):
        super().__init__(message)
        self.envs_mask = envs_mask
