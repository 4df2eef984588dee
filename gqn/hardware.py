"""What this machine's CPU offers, for choosing a compute precision.

bfloat16 convolutions are only fast on CPUs with native instructions
(AVX512-BF16 or AMX-BF16); elsewhere oneDNN emulates them, slower than
float32, so such a request falls back to float32 with a message.
"""
BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo_path="/proc/cpuinfo"):
    """The CPU feature flags Linux reports (empty where it reports none)."""
    try:
        with open(cpuinfo_path) as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_bfloat16():
    return any(flag in cpu_flags() for flag in BFLOAT16_CPU_FLAGS)


def effective_precision(requested, use_tpu, log):
    """The precision a run can honour: bfloat16 on TPU or a CPU with native
    bfloat16, else float32 (said through `log`)."""
    if requested == "bfloat16" and not use_tpu and not cpu_has_bfloat16():
        log("bfloat16 asked for, but this CPU lacks "
            f"{' / '.join(BFLOAT16_CPU_FLAGS)}: computing in float32")
        return "float32"
    return requested


def use_logical_cpus(count):
    """Splits the CPU into `count` logical devices (/cpu:0 ... /cpu:N-1), so
    that a MirroredStrategy can run `count` replicas on one CPU (tests and
    benchmarks of the distributed path). Must run before TensorFlow creates
    any device (before the first session or op runs)."""
    import tensorflow as tf2  # the 2.x API holds the device configuration
    cpu = tf2.config.list_physical_devices("CPU")[0]
    tf2.config.set_logical_device_configuration(
        cpu, [tf2.config.LogicalDeviceConfiguration()] * count)
    return [f"/cpu:{i}" for i in range(count)]
