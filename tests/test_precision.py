"""The CPU's capability as torch's kernels see it: its flags, lowered by the variables that cap the libraries."""

import pytest

from vae_hub.precision import cpu_capability, cpu_has_native_bf16, describe_cpu_capability

ZEN4 = "flags\t\t: fpu sse avx avx2 fma avx512f avx512bw avx512vl avx512_bf16 avx512_vnni\n"
SAPPHIRE_RAPIDS = ZEN4.replace("\n", " amx_bf16 amx_tile amx_int8\n")
ZEN2 = "flags\t\t: fpu sse avx avx2 fma\n"
GRAVITON3 = "Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp bf16 i8mm\n"


@pytest.fixture(autouse=True)
def x86_host(monkeypatch):
    """These flags are an x86 CPU's: read them as on one, whatever machine runs the tests."""
    monkeypatch.setattr("vae_hub.precision.platform.machine", lambda: "x86_64")


def test_an_arm_cpu_is_named_by_its_bf16_feature(monkeypatch):
    monkeypatch.setattr("vae_hub.precision.platform.machine", lambda: "aarch64")
    assert describe_cpu_capability(GRAVITON3, env={}) == "Arm with BF16"
    assert cpu_has_native_bf16(GRAVITON3, env={})
    assert describe_cpu_capability(GRAVITON3.replace(" bf16", ""), env={}) == "Arm"


@pytest.mark.parametrize(
    ("cpuinfo", "name"),
    [(ZEN2, "AVX2"), (ZEN4, "AVX-512 BF16"), (SAPPHIRE_RAPIDS, "AMX"), ("flags : fpu sse sse2\n", "below AVX2")],
)
def test_the_capability_is_the_highest_the_flags_allow(cpuinfo, name):
    assert describe_cpu_capability(cpuinfo, env={}) == name


@pytest.mark.parametrize(
    "env",
    [{"ONEDNN_MAX_CPU_ISA": "AVX2"}, {"DNNL_MAX_CPU_ISA": "avx2_vnni"}, {"ATEN_CPU_CAPABILITY": "avx2"},
     {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}],
)  # fmt: skip
def test_a_cap_on_the_libraries_takes_native_bf16_away_and_is_named(env):
    assert cpu_has_native_bf16(SAPPHIRE_RAPIDS, env={})
    assert not cpu_has_native_bf16(SAPPHIRE_RAPIDS, env=env)
    level, caps = cpu_capability(SAPPHIRE_RAPIDS, env=env)
    ((variable, value),) = env.items()
    assert caps == [f"{variable}={value}"]
    assert describe_cpu_capability(SAPPHIRE_RAPIDS, env=env).endswith(f"(capped by {variable}={value})")


def test_a_cap_at_or_above_what_the_cpu_has_changes_nothing():
    for env in ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}, {"ONEDNN_MAX_CPU_ISA": "DEFAULT"},
                {"ATEN_CPU_CAPABILITY": "avx512"}, {"MKL_ENABLE_INSTRUCTIONS": "AVX512"}):  # fmt: skip
        assert describe_cpu_capability(SAPPHIRE_RAPIDS, env=env) == "AMX"
    assert describe_cpu_capability(ZEN2, env={"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"}) == "AVX2"
    assert describe_cpu_capability(ZEN4, env={"ATEN_CPU_CAPABILITY": "default"}) == (
        "below AVX2 (capped by ATEN_CPU_CAPABILITY=default)"
    )
