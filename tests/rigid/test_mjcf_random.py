"""Tests for the random MJCF tree generator (tests/rigid/mjcf_random.py)."""

from __future__ import annotations

import collections
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from .mjcf_random import ACTUATOR_KINDS, random_mjcf, random_state

SEEDS = range(50)


def _compile(xml: str) -> mujoco.MjModel:
    return mujoco.MjModel.from_xml_string(xml)


@pytest.fixture(scope="module")
def models():
    return {s: (random_mjcf(s), _compile(random_mjcf(s))) for s in SEEDS}


def _features(xml: str, m: mujoco.MjModel) -> dict:
    root = ET.fromstring(xml)
    jt = mujoco.mjtJoint
    kinds = collections.Counter(a.get("name").split("_", 1)[1] for a in root.iter()
                                if a.tag in ("motor", "position", "velocity", "general"))
    hs = np.isin(m.jnt_type, [jt.mjJNT_HINGE, jt.mjJNT_SLIDE])
    body_jnt = m.body_jntnum[1:]
    return {
        "nbody": m.nbody - 1,
        "hinge": int(np.sum(m.jnt_type == jt.mjJNT_HINGE)),
        "slide": int(np.sum(m.jnt_type == jt.mjJNT_SLIDE)),
        "ball": int(np.sum(m.jnt_type == jt.mjJNT_BALL)),
        "free": int(np.sum(m.jnt_type == jt.mjJNT_FREE)),
        "limited": int(np.sum(m.jnt_limited.astype(bool) & hs)),
        "stiff": int(np.sum((m.jnt_stiffness > 0) & hs)),
        "multi_joint_bodies": int(np.sum(body_jnt >= 2)),
        "welded_bodies": int(np.sum(body_jnt == 0)),
        "branching": int(np.any(np.bincount(m.body_parentid[1:], minlength=m.nbody) >= 2)),
        "ntendon": m.ntendon,
        "tendon_act": int(np.sum(m.actuator_trntype == mujoco.mjtTrn.mjTRN_TENDON)),
        "joint_act": int(np.sum(m.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)),
        "ctrllimited": int(np.sum(m.actuator_ctrllimited)),
        "forcelimited": int(np.sum(m.actuator_forcelimited)),
        "position_kv": sum(1 for a in root.iter("position") if a.get("kv") is not None),
        "margin": int(np.sum(m.jnt_margin > 0)),
        **{f"act_{k}": kinds.get(k, 0) for k in ACTUATOR_KINDS},
    }


def test_compiles_and_deterministic(models):
    for s in SEEDS:
        xml, m = models[s]
        assert random_mjcf(s) == xml
        assert m.nbody - 1 >= 2 and m.nbody - 1 <= 8
        root = ET.fromstring(xml)
        assert root.find("compiler").get("angle") == "radian"
        # no contacts / equality / sensors / activation dynamics
        assert all(g.get("contype") == "0" and g.get("conaffinity") == "0" for g in root.iter("geom"))
        assert m.neq == 0 and m.nsensor == 0 and m.na == 0
        assert np.all(m.actuator_dyntype == mujoco.mjtDyn.mjDYN_NONE)
        # at most one free joint, and only on a direct child of worldbody
        free = np.flatnonzero(m.jnt_type == mujoco.mjtJoint.mjJNT_FREE)
        assert len(free) <= 1
        for j in free:
            assert m.body_parentid[m.jnt_bodyid[j]] == 0
        # ball joints carry no range / stiffness
        ball = m.jnt_type == mujoco.mjtJoint.mjJNT_BALL
        assert not np.any(m.jnt_limited[ball]) and not np.any(m.jnt_stiffness[ball])
        # explicit inertials are valid and preserved
        assert np.all(m.body_mass[1:] >= 0.1 - 1e-9) and np.all(m.body_mass[1:] <= 5.0 + 1e-9)
        inert = m.body_inertia[1:]
        assert np.all(inert > 0)
        srt = np.sort(inert, axis=1)
        assert np.all(srt[:, 0] + srt[:, 1] >= srt[:, 2])


def test_varies_and_covers_features(models):
    xmls = {models[s][0] for s in SEEDS}
    assert len(xmls) == len(SEEDS)
    feats = [_features(*models[s]) for s in SEEDS]
    total = collections.Counter()
    seeds_with = collections.Counter()
    for f in feats:
        for k, v in f.items():
            total[k] += v
            seeds_with[k] += v > 0
    for key in ("hinge", "slide", "ball", "free", "limited", "stiff", "multi_joint_bodies",
                "welded_bodies", "branching", "ntendon", "tendon_act", "joint_act", "ctrllimited",
                "forcelimited", "position_kv", "margin",
                *(f"act_{k}" for k in ACTUATOR_KINDS)):
        assert seeds_with[key] > 0, f"feature {key!r} never generated over seeds 0..49"
    assert len({f["nbody"] for f in feats}) >= 4
    # both free-base and fixed-base models occur
    assert 0 < seeds_with["free"] < len(SEEDS)


def test_options_disable_features():
    for s in range(20):
        m = _compile(random_mjcf(s, limits=False, actuators=False, tendons=False,
                                 stiffness=False, multi_joint=False, float_base=False))
        assert m.nu == 0 and m.ntendon == 0
        assert not np.any(m.jnt_limited) and not np.any(m.jnt_stiffness)
        assert np.all(m.body_jntnum <= 1)
        assert not np.any(m.jnt_type == mujoco.mjtJoint.mjJNT_FREE)

        m = _compile(random_mjcf(s, n_bodies=5, joint_types=("hinge",), float_base=True))
        assert m.nbody - 1 == 5
        assert m.jnt_type[0] == mujoco.mjtJoint.mjJNT_FREE and m.jnt_bodyid[0] == 1
        assert set(m.jnt_type[1:].tolist()) <= {int(mujoco.mjtJoint.mjJNT_HINGE)}


def test_random_state(models):
    jt = mujoco.mjtJoint
    violated = 0
    for s in SEEDS:
        _, m = models[s]
        qpos, qvel, ctrl = random_state(m, np.random.default_rng(s))
        q2, v2, c2 = random_state(m, np.random.default_rng(s))
        assert np.array_equal(qpos, q2) and np.array_equal(qvel, v2) and np.array_equal(ctrl, c2)
        assert qpos.shape == (m.nq,) and qvel.shape == (m.nv,) and ctrl.shape == (m.nu,)
        for j in range(m.njnt):
            a = m.jnt_qposadr[j]
            if m.jnt_type[j] == jt.mjJNT_FREE:
                assert abs(np.linalg.norm(qpos[a + 3:a + 7]) - 1) < 1e-12
            elif m.jnt_type[j] == jt.mjJNT_BALL:
                assert abs(np.linalg.norm(qpos[a:a + 4]) - 1) < 1e-12
            elif m.jnt_limited[j]:
                lo, hi = m.jnt_range[j]
                violated += not (lo <= qpos[a] <= hi)
        lim = m.actuator_ctrllimited.astype(bool)
        assert np.all(ctrl[lim] >= m.actuator_ctrlrange[lim, 0])
        assert np.all(ctrl[lim] <= m.actuator_ctrlrange[lim, 1])
    assert violated > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_simulation_finite(models, seed):
    _, m = models[seed]
    m.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_CONTACT
    m.opt.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    m.opt.timestep = 0.002
    d = mujoco.MjData(m)
    qpos, qvel, ctrl = random_state(m, np.random.default_rng(1000 + seed))
    d.qpos[:], d.qvel[:], d.ctrl[:] = qpos, qvel, ctrl
    for _ in range(200):
        mujoco.mj_step(m, d)
    assert np.all(np.isfinite(d.qpos)) and np.all(np.isfinite(d.qvel))
    assert not np.any(d.warning.number[mujoco.mjtWarning.mjWARN_BADQACC])
    # no blow-up either: velocities stay physically plausible
    assert np.max(np.abs(d.qvel)) < 1e3
