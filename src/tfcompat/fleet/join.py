"""One image, many hosts: an environment report of an image (checked with ``--root``, host facts unknown) joined
with each node's host facts, so that every node is judged on the environment its jobs will really meet.
"""

from __future__ import annotations

import dataclasses

from tfcompat.model import Environment

HOST_FACTS = ("driver", "gpus", "rocm", "resources", "platform.kernel", "platform.cpu", "host")
IMAGE_PLATFORM_FIELDS = ("os_release", "os_release_path", "glibc", "glibc_source")


def _is_host_fact(fact: str) -> bool:
    return any(fact == p or fact.startswith(p + ".") or fact.startswith(p + "_") for p in HOST_FACTS)


def join_environment(image: Environment, node: Environment) -> Environment:
    """The job's view: the image's Python environment (target, user-space OS and glibc) on the node's host
    (driver, GPUs, kernel, CPU, resources). Unknowns are taken from whichever side owns the fact."""
    host = node.host
    image_platform = image.host.platform
    merged_platform = dataclasses.replace(
        host.platform,
        **{
            f: getattr(image_platform, f) for f in IMAGE_PLATFORM_FIELDS if getattr(image_platform, f, None) is not None
        },
    )
    unknowns = tuple(u for u in image.unknowns if not _is_host_fact(u.fact)) + tuple(
        u for u in node.unknowns if _is_host_fact(u.fact)
    )
    if any(getattr(image_platform, f, None) is not None for f in ("os_release", "glibc")):
        unknowns = tuple(
            u
            for u in unknowns
            if u.fact not in ("platform.os_release", "platform.glibc")
            or getattr(image_platform, u.fact.split(".")[1], None) is None
        )
    return dataclasses.replace(
        image,
        host=dataclasses.replace(host, platform=merged_platform),
        unknowns=unknowns,
        created=node.created or image.created,
    )
