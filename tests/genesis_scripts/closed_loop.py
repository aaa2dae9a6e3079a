"""A closed-loop four-bar linkage: the loop is closed by an MJCF equality constraint (`connect` pins two bodies at
a point, `weld` also locks their relative orientation), started away from its rest pose so that it swings."""

import argparse

import genesis_torch as gs


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-v", "--vis", action="store_true", default=False)
    parser.add_argument("-s", "--steps", type=int, default=300)
    parser.add_argument("--constraint", type=str, default="connect", choices=("connect", "weld"))
    args, _ = parser.parse_known_args()

    gs.init(backend=gs.cpu)

    scene = gs.Scene(
        viewer_options=gs.options.ViewerOptions(camera_pos=(10, 0, 10), camera_lookat=(0.0, 0.0, 3), camera_fov=60),
        show_viewer=args.vis,
    )
    linkage = scene.add_entity(
        gs.morphs.MJCF(
            file="xml/four_bar_linkage.xml" if args.constraint == "connect" else "xml/four_bar_linkage_weld.xml",
        ),
    )
    scene.build()

    qpos = linkage.get_qpos()
    qpos[:3] = 0.2
    linkage.set_qpos(qpos)

    for _ in range(args.steps):
        scene.step()
    return scene, linkage


if __name__ == "__main__":
    scene, linkage = main()
