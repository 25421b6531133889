"""Run the probes and assemble an Environment: the only place that knows every probe."""

from __future__ import annotations

import dataclasses
import datetime
import os
import posixpath
from collections.abc import Mapping, Sequence
from typing import Optional

from tfcompat import __version__
from tfcompat.matrix import WorldFacts, shipped_facts
from tfcompat.model import (
    CondaPackage,
    CustomOp,
    Driver,
    Environment,
    Gpu,
    Host,
    LibraryCopy,
    Package,
    Platform,
    Provenance,
    Scope,
    Target,
    TensorFlowBuild,
    Unknown,
)
from tfcompat.probes.budget import UNLIMITED, Budget
from tfcompat.probes.conda import probe_conda
from tfcompat.probes.custom_ops import probe_custom_ops
from tfcompat.probes.importprobe import DEFAULT_TIMEOUT as DEFAULT_PROBE_TIMEOUT
from tfcompat.probes.importprobe import probe_import
from tfcompat.probes.libraries import probe_libraries
from tfcompat.probes.native.config import LoaderConfig
from tfcompat.probes.nvidia import probe_nvidia
from tfcompat.probes.packages import scan_distributions
from tfcompat.probes.platform import probe_platform
from tfcompat.probes.provenance import probe_libtensorflow, probe_provenance
from tfcompat.probes.resources import probe_resources
from tfcompat.probes.rocm import probe_rocm, probe_rocm_objects
from tfcompat.probes.rootfs import Root
from tfcompat.probes.target import TargetSpec, resolve_target
from tfcompat.probes.tensorflow import find_tensorflow


def node_identity(explicit: Optional[str] = None, environ: Mapping[str, str] = os.environ) -> tuple[str, str]:
    """(name, where it came from): --node-name, then Kubernetes' NODE_NAME, Slurm's SLURMD_NODENAME, the host name."""
    if explicit:
        return explicit, "--node-name"
    for var in ("NODE_NAME", "SLURMD_NODENAME"):
        if environ.get(var):
            return environ[var], f"${var}"
    return os.uname().nodename, "host name"  # gethostname(2) on Linux, without importing socket (1 ms)


def target_loader(
    root: Root, executable: Optional[str], environ: Mapping[str, str], cpu_flags: Sequence[str]
) -> Optional[LoaderConfig]:
    """The target's loader model, its architecture from the target's own binaries (its python first).
    None when it cannot be built: each probe then builds its own and reports the failure as before."""
    if executable:
        executable = os.path.abspath(executable) if root.is_host else posixpath.join("/", root.display(executable))
    try:
        return LoaderConfig.for_target(root, executable, environ if root.is_host else None, cpu_flags)
    except (OSError, ValueError):
        return None


JOB_LOADER_VARIABLES = ("LD_LIBRARY_PATH", "LD_PRELOAD")


def scan(
    spec: TargetSpec,
    node_name: Optional[str] = None,
    nvml: bool = True,
    nvml_env: Optional[Mapping[str, str]] = None,
    environ: Optional[Mapping[str, str]] = None,
    ops: Sequence[str] = (),
    probe: bool = False,
    probe_timeout: float = DEFAULT_PROBE_TIMEOUT,
    facts: Optional[WorldFacts] = None,
    budget: Optional[Budget] = None,
    scope: Optional[Scope] = None,
) -> Environment:
    """Probe everything. `environ` (default: this process's) supplies LD_LIBRARY_PATH / LD_PRELOAD on the host;
    under --root no host variable is read. `facts`: the matrix's world facts the probes look for (which
    sonames TF dlopen()s, the TensorFlow distributions, the driver's libraries); the shipped matrix's by default.

    `budget` (--budget): the probes run in order and each is started only while the budget lasts; the
    libraries and custom-op probes also stop part way. What did not finish becomes an Unknown with the
    budget's reason, so the rules that need it are skipped (see probes/budget.py).

    `scope` (--scope, default job): recorded in the Environment; a node agent's (Scope.NODE) resource limits are its
    own, and `check` judges them as information."""
    facts = facts if facts is not None else shipped_facts()
    budget = budget if budget is not None else UNLIMITED
    root = Root(spec.root)
    resolved = resolve_target(spec)
    unknowns: list[Unknown] = list(resolved.unknowns)
    if resolved.python.version is None:
        unknowns.append(
            Unknown(
                "python.version",
                "no interpreter was run and the site-packages path names no pythonX.Y; pass --python to tell",
            )
        )

    def late(*facts_: str) -> bool:
        """True (and the facts recorded as unknown) when the budget is spent before this probe starts."""
        if not budget.expired():
            return False
        unknowns.extend(Unknown(f, budget.reason) for f in facts_)
        return True

    packages: tuple[Package, ...] = ()
    shadowed: tuple[Package, ...] = ()
    if not late("packages"):
        packages, shadowed, package_unknowns = scan_distributions(resolved.search_path, root)
        unknowns += package_unknowns
    tf_builds: tuple[TensorFlowBuild, ...] = ()
    if not late("tensorflow"):
        tf_builds, tf_unknowns = find_tensorflow(packages, resolved.search_path, root, facts.tf_distribution_names)
        unknowns += tf_unknowns
    conda: tuple[CondaPackage, ...] = ()
    if not late("conda"):  # a conda environment's CUDA library packages: the libraries probe versions their files
        conda, conda_unknowns = probe_conda(root, resolved.search_path, resolved.python.executable)
        unknowns += conda_unknowns
    platform = Platform()
    if not late("platform"):
        platform, platform_unknowns = probe_platform(root)
        unknowns += platform_unknowns
    env_vars = (os.environ if environ is None else environ) if root.is_host else {}
    # A node agent (--scope node: Slurm health check, NHC) runs with its own environment, not the job's: its
    # LD_LIBRARY_PATH / LD_PRELOAD say nothing of where the job's loader looks, so the loader model uses none.
    loader_env: Mapping[str, str] = env_vars
    if scope is Scope.NODE and any(env_vars.get(k) for k in JOB_LOADER_VARIABLES):
        loader_env = {k: v for k, v in env_vars.items() if k not in JOB_LOADER_VARIABLES}
        unknowns.append(
            Unknown(
                "native.job_loader_environment",
                "--scope node: the job's LD_LIBRARY_PATH / LD_PRELOAD are not known to a node agent "
                f"(this check's own {', '.join(k for k in JOB_LOADER_VARIABLES if env_vars.get(k))} was not used); "
                "a check inside the job (--scope job) judges them",
            )
        )
    # The loader model of the target, built once and shared: libraries, custom ops and the driver libraries
    # are all looked up by the same ld.so.cache, ld.so.conf and default dirs, of the target's architecture.
    loader_config = None
    if not budget.expired():
        loader_config = target_loader(root, resolved.python.executable, loader_env, platform.cpu_flags)
    tf = tf_builds[0] if tf_builds else None
    native = None
    if not late("libraries"):
        native, native_unknowns = probe_libraries(
            root,
            tf,
            packages,
            resolved.search_path,
            resolved.python,
            platform,
            loader_env if root.is_host else None,
            loader_config=loader_config,
            facts=facts,
            budget=budget,
            conda=conda,
        )
        unknowns += native_unknowns
    custom_ops: tuple[CustomOp, ...] = ()
    if not late("custom_ops"):
        custom_ops, op_unknowns = probe_custom_ops(
            root,
            tf,
            packages,
            facts.tf_distribution_names,
            resolved.python.executable,
            ops,
            platform.cpu_flags,
            loader_env,
            loader_config,
            budget=budget,
        )
        unknowns += op_unknowns
    provenance: Optional[Provenance] = None
    libtensorflow: tuple[LibraryCopy, ...] = ()
    if not late("provenance", "libtensorflow"):  # NGC release, conda env, the C library (issue 14)
        provenance, provenance_unknowns = probe_provenance(root, tf, resolved.search_path, env_vars)
        libtensorflow, libtensorflow_unknowns = probe_libtensorflow(root, loader_config)
        unknowns += provenance_unknowns + libtensorflow_unknowns
    driver: Optional[Driver] = None
    gpus: tuple[Gpu, ...] = ()
    if not late("driver", "gpus"):
        driver, gpus, nv_unknowns = probe_nvidia(
            root,
            nvml=nvml,
            nvml_env=nvml_env,
            environ=env_vars,
            loader_config=loader_config,
            driver_sonames=facts.driver_sonames,
            budget=budget,
        )
        unknowns += nv_unknowns
    rocm = None
    if not late("rocm"):
        rocm, rocm_unknowns = probe_rocm(root)
        unknowns += rocm_unknowns
    if tf is not None and not late("tensorflow.rocm_objects"):
        # TF's own ROCm-linked objects (nothing for a CUDA or CPU build): recorded on the effective TF build
        rocm_objects, rocm_object_unknowns = probe_rocm_objects(
            root, tf, resolved.python.executable, platform.cpu_flags, loader_env, loader_config
        )
        unknowns += rocm_object_unknowns
        if rocm_objects:
            tf_builds = (dataclasses.replace(tf, rocm_objects=rocm_objects),) + tf_builds[1:]
    resources = None
    if not late("resources"):
        resources, resource_unknowns = probe_resources(root, environ=env_vars)
        unknowns += resource_unknowns
    # Last: the only probe that runs the target's TensorFlow (in a child process), and only when asked. It
    # gets what is left of the budget when that is less than --probe-timeout; stopped by the budget, it
    # is "not finished", never a hang of TensorFlow's import.
    probe_result = None
    if probe and not late("probe"):
        timeout = budget.cap(probe_timeout)
        probe_result, probe_unknowns = probe_import(root, resolved.python, tf_builds, timeout, environ)
        if probe_result is not None and probe_result.outcome == "timeout" and timeout < probe_timeout:
            probe_result, probe_unknowns = (
                None,
                [
                    Unknown(
                        "probe", f"{budget.reason} (the import of TensorFlow was still running after {timeout:.0f} s)"
                    )
                ],
            )
        unknowns += probe_unknowns
    name, name_source = node_identity(node_name)
    return Environment(
        host=Host(
            node_name=name,
            node_name_source=name_source,
            platform=platform,
            driver=driver,
            gpus=gpus,
            rocm=rocm,
            resources=resources,
        ),
        target=Target(
            root=root.root,
            python=resolved.python,
            site_packages=resolved.search_path,
            packages=packages,
            shadowed_packages=shadowed,
            tensorflow=tf_builds,
            native=native,
            custom_ops=custom_ops,
            conda_packages=conda,
            provenance=provenance,
            libtensorflow=libtensorflow,
        ),
        unknowns=tuple(unknowns),
        tool_version=__version__,
        created=datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        probe=probe_result,
        scope=scope if scope is not None else Scope.JOB,
    )
