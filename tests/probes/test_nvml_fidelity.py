"""The NVML fake against the real pynvml, and NVML answers carried through the child process into verdicts.

A real H100 heals uncorrectable ECC errors by row remapping (its retired-page queries answer "Not Supported")
and keeps volatile (since the driver loaded) and aggregate (lifetime) ECC counters apart; the fake must too,
or the probe tests pass on answers no GPU gives (issue #12, Deliver 6)."""

import dataclasses
import importlib.util
import inspect
import os
import re

import pytest
from envs import make_env, run_rule
from probe_helpers import PROC_VERSION_550, SRC_DIR, make_fake_nvml, nvml_env, write

from tfcompat.model import Severity
from tfcompat.probes.nvidia import probe_nvidia
from tfcompat.probes.rootfs import Root

CHILD = os.path.join(SRC_DIR, "tfcompat", "probes", "nvml_child.py")


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def real():
    return pytest.importorskip("pynvml")  # nvidia-ml-py is a runtime dependency: always there in the venv


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    d = make_fake_nvml(tmp_path_factory.mktemp("fakenvml"))
    return _load(os.path.join(d, "pynvml.py"), "fake_pynvml")


def _required(fn):
    return [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]


def test_every_fake_function_exists_in_pynvml_with_the_same_arguments(real, fake):
    names = [n for n in dir(fake) if n.startswith("nvml") and callable(getattr(fake, n))]
    assert len(names) >= 15
    for name in names:
        assert hasattr(real, name), f"the fake answers {name}, which pynvml does not have"
        got, want = len(_required(getattr(fake, name))), len(_required(getattr(real, name)))
        assert got == want, f"{name}: the fake takes {got} arguments, pynvml {want}"


def test_every_nvml_call_of_the_child_is_in_pynvml_and_the_fake(real, fake):
    """nvml_child asks optional queries through getattr(): a misspelt name would silently read as unknown."""
    with open(CHILD, encoding="utf-8") as fh:
        called = set(re.findall(r"\b(nvml[A-Z]\w+)", fh.read()))
    assert {"nvmlInit", "nvmlDeviceGetRemappedRows", "nvmlDeviceGetTotalEccErrors"} <= called
    for name in sorted(called):
        assert hasattr(real, name), name
        assert hasattr(fake, name), name


def test_constants_agree_with_pynvml(real, fake):
    for name in (
        "NVML_ERROR_NOT_SUPPORTED",
        "NVML_MEMORY_ERROR_TYPE_CORRECTED",
        "NVML_MEMORY_ERROR_TYPE_UNCORRECTED",
        "NVML_VOLATILE_ECC",
        "NVML_AGGREGATE_ECC",
    ):
        assert getattr(fake, name) == getattr(real, name), name
    # the child's fallbacks when an old pynvml lacks a constant, and the page-retirement causes it asks
    assert (
        real.NVML_PAGE_RETIREMENT_CAUSE_MULTIPLE_SINGLE_BIT_ECC_ERRORS,
        real.NVML_PAGE_RETIREMENT_CAUSE_DOUBLE_BIT_ECC_ERROR,
    ) == (0, 1)
    assert real.NVML_ERROR_LIB_RM_VERSION_MISMATCH == 18


def test_fake_h100_remaps_rows_and_keeps_counters_apart(fake, tmp_path):
    sick = _load(os.path.join(make_fake_nvml(tmp_path / "sick", sick=True), "pynvml.py"), "fake_sick")
    for mod in (fake, sick):
        with pytest.raises(mod.NVMLError) as err:
            mod.nvmlDeviceGetRetiredPagesPendingStatus(0)
        assert err.value.value == mod.NVML_ERROR_NOT_SUPPORTED
        with pytest.raises(mod.NVMLError):
            mod.nvmlDeviceGetRetiredPages(0, 1)
    assert sick.nvmlDeviceGetRemappedRows(2) == (0, 1, 1, 0)
    unc = sick.NVML_MEMORY_ERROR_TYPE_UNCORRECTED
    for handle in range(4):
        vol = sick.nvmlDeviceGetTotalEccErrors(handle, unc, sick.NVML_VOLATILE_ECC)
        agg = sick.nvmlDeviceGetTotalEccErrors(handle, unc, sick.NVML_AGGREGATE_ECC)
        assert agg >= vol, handle
    assert sick.nvmlDeviceGetTotalEccErrors(3, unc, sick.NVML_VOLATILE_ECC) == 0
    assert sick.nvmlDeviceGetTotalEccErrors(3, unc, sick.NVML_AGGREGATE_ECC) == 3


# -- through the child process -----------------------------------------------------------------------------


@pytest.fixture
def proc(tmp_path):
    return write(tmp_path / "proc" / "version", PROC_VERSION_550)


def _probe(tmp_path, proc, **kw):
    driver, gpus, unknowns = probe_nvidia(
        Root(None), nvml_env=nvml_env(make_fake_nvml(tmp_path / "n", **kw)), proc_version=proc
    )
    return driver, gpus, unknowns


def _node(driver, gpus, unknowns=()):
    env = make_env("2.21.0", driver=driver.version if driver else None, gpus=gpus, unknowns=unknowns)
    return dataclasses.replace(env, host=dataclasses.replace(env.host, driver=driver))


def test_sick_h100_reads_remap_and_both_ecc_counters(tmp_path, proc):
    _driver, gpus, unknowns = _probe(tmp_path, proc, sick=True)
    assert unknowns == []
    g2, g3 = gpus[2], gpus[3]
    assert (g2.ecc_uncorrected_volatile, g2.ecc_uncorrected_aggregate) == (2, 5)
    assert (g3.ecc_uncorrected_volatile, g3.ecc_uncorrected_aggregate) == (0, 3)
    assert g2.remap_pending is True and g2.remap_failure is False
    assert g3.remap_pending is False
    # not supported on Hopper: unknown, never "no retired pages"
    assert g2.retired_pages_pending is None and g2.retired_pages is None


def test_sick_h100_verdict_flags_the_pending_remap_not_the_old_errors(tmp_path, proc, matrix):
    driver, gpus, _unknowns = _probe(tmp_path, proc, sick=True)
    (f,), _ = run_rule(_node(driver, gpus), matrix, "TFC805")
    assert f.severity is Severity.ERROR
    assert "GPU 2 " in f.message and "2 uncorrectable ECC error(s) since the driver loaded" in f.message
    assert "row remap pending" in f.message
    assert "GPU 3 " not in f.message  # 3 lifetime errors, all remapped: history, not a reason to drain


def test_failed_remap_means_rma(tmp_path, proc, matrix):
    driver, gpus, _ = _probe(tmp_path, proc, remap_failed=1)
    assert gpus[1].remap_failure is True
    (f,), _ = run_rule(_node(driver, gpus), matrix, "TFC805")
    assert "GPU 1 " in f.message and "RMA" in f.remediation


def test_v100_counts_retired_pages_of_both_causes(tmp_path, proc):
    _driver, gpus, _ = _probe(tmp_path, proc, sick=True, model="V100")
    assert gpus[0].name == "Tesla V100-SXM2-32GB" and gpus[0].compute_capability == "7.0"
    assert gpus[2].retired_pages_pending is True and gpus[2].retired_pages == 2
    assert gpus[3].retired_pages_pending is False and gpus[3].retired_pages == 3
    assert gpus[2].remap_pending is None


def test_nvml_error_18_at_init_reaches_tfc203(tmp_path, proc, matrix):
    """nvmlInit answers NVML_ERROR_LIB_RM_VERSION_MISMATCH after a driver upgrade without a reboot."""
    driver, gpus, unknowns = _probe(tmp_path, proc, init_error=18)
    assert driver.nvml_error == "NVML_ERROR_LIB_RM_VERSION_MISMATCH"
    assert gpus == () and [u.fact for u in unknowns] == ["gpus"]
    env = _node(driver, gpus, unknowns)
    (f,), skips = run_rule(env, matrix, "TFC203")
    assert f.severity is Severity.ERROR and skips == []
    assert "driver/library version mismatch: kernel module 550.54.15" in f.message
    assert ("NVML", "NVML_ERROR_LIB_RM_VERSION_MISMATCH") in [(e.fact, e.value) for e in f.evidence]
    assert "Reboot the node" in f.remediation


@pytest.mark.parametrize("code", [4, 12, 42])
def test_other_init_errors_are_not_a_mismatch(tmp_path, proc, matrix, code):
    driver, gpus, unknowns = _probe(tmp_path, proc, init_error=code)
    assert driver.nvml_error != "NVML_ERROR_LIB_RM_VERSION_MISMATCH"
    assert run_rule(_node(driver, gpus, unknowns), matrix, "TFC203")[0] == []


def test_error_18_names_the_nvml_library_the_loader_finds(tmp_path, proc, matrix):
    from tfcompat.model import DriverLibrary

    driver, gpus, unknowns = _probe(tmp_path, proc, init_error=18)
    libs = (
        DriverLibrary(
            "libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.555.42.06", "555.42.06"
        ),  # another version than libnvidia-ml
        DriverLibrary("libnvidia-ml.so.1", "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.560.35.03", "560.35.03"),
    )
    driver = dataclasses.replace(driver, libraries=libs)
    (f,), _ = run_rule(_node(driver, gpus, unknowns), matrix, "TFC203")
    assert "kernel module 550.54.15, libnvidia-ml 560.35.03;" in f.message
    assert ("libnvidia-ml.so.1", "560.35.03") in [(e.fact, e.value) for e in f.evidence]


def test_tfc203_without_a_kernel_module_version_is_skipped(matrix):
    from tfcompat.model import Driver, DriverLibrary

    driver = Driver(
        nvml_driver_version="550.54.15",
        libraries=(DriverLibrary("libcuda.so.1", "/usr/lib/x86_64-linux-gnu/libcuda.so.560.35.03", "560.35.03"),),
    )
    findings, (skip,) = run_rule(_node(driver, ()), matrix, "TFC203")
    assert findings == [] and "kernel module version is unknown" in skip.reason


def test_a_lost_gpu_reaches_tfc209(tmp_path, proc, matrix):
    driver, gpus, unknowns = _probe(tmp_path, proc, lost=2)
    assert [g.index for g in gpus] == [0, 1, 3] and driver.gpu_errors
    (f,), _ = run_rule(_node(driver, gpus, unknowns), matrix, "TFC209")
    assert f.severity is Severity.ERROR and "GPU 2" in f.message and "Xid 79" in f.remediation


def test_gpu_is_lost_at_init_reaches_tfc209_and_a_healthy_node_does_not(tmp_path, proc, matrix):
    driver, gpus, unknowns = _probe(tmp_path, proc, init_error=15)
    assert driver.nvml_error == "NVML_ERROR_GPU_IS_LOST"
    (f,), _ = run_rule(_node(driver, gpus, unknowns), matrix, "TFC209")
    assert "nvmlInit: NVML_ERROR_GPU_IS_LOST" in f.message
    driver, gpus, unknowns = _probe(tmp_path / "ok", proc)
    assert run_rule(_node(driver, gpus, unknowns), matrix, "TFC209")[0] == []
