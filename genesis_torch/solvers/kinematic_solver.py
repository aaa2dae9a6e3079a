"""The kinematic solver of `gs.materials.Kinematic` entities (ghosts, reference poses): the rigid solver's model and
forward kinematics without dynamics, contacts or coupling (docs/decisions.md, "Kinematic entities").

Genesis 1.4.5 builds its `RigidSolver` on its `KinematicSolver` (engine/solvers/kinematic_solver.py: forward
kinematics only, every simulation hook a no-op); here the relation is the same the other way round: this module
reuses the rigid scene solver's public class (entities from MJCF/URDF/primitives/Mesh, one composed MuJoCo model,
`RigidEntity` handles with set_qpos / set_pos / get_links_pos / inverse_kinematics, per-env parameters in
checkpoints) and removes the physics:
  * every geom of a kinematic entity has contype = conaffinity = 0 and the model is built without collision, so no
    contact exists between ghosts, nor with the rigid solver's bodies, which live in another model;
  * `substep` returns the state unchanged (no integration: the pose set last stays, velocities are kept as set);
  * it offers nothing to the solvers after it (`offer` / `couple` unchanged): particles never see a ghost.
Its state is the rigid state under its own checkpoint prefix "KinematicSolver" (`KinematicState`).

It is a module beside the registry, not a `solvers/<name>/` folder: the folders are independent solvers that never
import each other (tests/test_solver_protocol.py); this one is by construction the rigid solver minus physics.
"""

from __future__ import annotations

import dataclasses

from ..materials import Kinematic
from ..options import KinematicOptions, RigidOptions
from .base import Couplings
from .rigid.scene_solver import RigidSceneSolver
from .rigid.solver import RigidSolver, RigidState

__all__ = ["KinematicSceneSolver", "KinematicState"]


@dataclasses.dataclass(frozen=True)
class KinematicState(RigidState):
    """`RigidState` of the kinematic entities (qpos, velocities as set, link poses from qpos), checkpoint prefix
    "KinematicSolver"."""

    prefix = "KinematicSolver"


class _KinematicRigidSolver(RigidSolver):
    """`RigidSolver` whose states are `KinematicState`s (set_qpos & co. make them through `make_state`)."""

    def make_state(self, **fields) -> KinematicState:
        return KinematicState(**super().make_state(**fields).tensors())

    def step(self, state):  # never called by the scene (substep below); a direct call must not simulate a ghost
        return state


#: the rigid options the kinematic model is built with: no contacts, no joint limits, no self-collision filtering
_RIGID = dict(enable_collision=False, enable_joint_limit=False, enable_self_collision=False)


class KinematicSceneSolver(RigidSceneSolver):
    """Kinematic entities behind the solver protocol; `scene.kinematic_solver` is the built (dynamics-free)
    `RigidSolver`, `scene.kinematic_options` the `gs.options.KinematicOptions`."""

    key, kind, options_class, state_class = "KinematicSolver", "kinematic", KinematicOptions, KinematicState
    materials, claims_no_material, material_hint = (Kinematic,), False, "gs.materials.Kinematic"
    entity_name_prefix = ""  # Genesis names kinematic entities by their morph alone, like rigid ones

    def __init__(self, scene, options: KinematicOptions):
        super().__init__(scene, RigidOptions(**_RIGID))
        self.kinematic_options = options

    @classmethod
    def check_options(cls, sim, options) -> None:
        """KinematicOptions have nothing that depends on the scene's SimOptions."""

    def _prepare(self, morph, material, surface):
        spec, child_model, _, _ = super()._prepare(morph, None, surface)
        for geom in spec.geoms:  # no contact with anything (MuJoCo: a pair collides iff contype & conaffinity != 0)
            geom.contype, geom.conaffinity = 0, 0
        return spec, spec.compile(), None, 0.0

    def validate(self) -> None:
        """Heterogeneous ghosts are allowed next to other solvers: nothing collides with them."""

    def _build(self, n_envs, device, dtype, sim, couplings) -> None:
        super()._build(n_envs, device, dtype, sim, couplings)
        self.solver.__class__ = _KinematicRigidSolver  # same fields; states become KinematicState, step a no-op
        self.rigid_options = self.options  # the resolved rigid options of the model
        self.options = self.kinematic_options

    def offer(self, couplings: Couplings) -> Couplings:
        return couplings  # ghosts are no colliders

    def initial_state(self, n_envs: int) -> KinematicState:
        state = super().initial_state(n_envs)
        return state if isinstance(state, KinematicState) else KinematicState(**state.tensors())

    def substep(self, state: KinematicState, couplings: Couplings, dt: float) -> KinematicState:
        """No dynamics: the pose set last stays (Genesis' kinematic substep is a no-op)."""
        return state

    def couple(self, couplings: Couplings, before, after, dt: float) -> Couplings:
        return couplings

    def load_state(self, arrays, params) -> KinematicState:
        state = super().load_state({k.replace(self.key + ".", "RigidSolver.", 1): v for k, v in arrays.items()
                                    if k.startswith(self.key + ".")}, params)
        return KinematicState(**state.tensors())

    def fingerprint(self) -> dict:
        """`{}` without kinematic entities (scenes without ghosts keep their fingerprints)."""
        if not self.entities:
            return {}
        return {"kinematic_options": self.options.fingerprint(),
                "kinematic_entities": [{**e._morph_fingerprint()} for e in self.entities]}
