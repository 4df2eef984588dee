"""What this machine offers, for choosing a compute precision.

- TPU: bfloat16 is its native format.
- GPU: bfloat16 arithmetic from compute capability 8.0 (A100, H100, RTX
  30xx/40xx); float16 tensor cores from 7.0 (V100, T4, RTX 20xx), which
  --precision float16 uses with dynamic loss scaling (gqn.optimization).
- CPU: bfloat16 convolutions are only fast with native instructions
  (AVX512-BF16 or AMX-BF16); elsewhere oneDNN emulates them, slower than
  float32. float16 convolutions run on a CPU but are emulated too.

A request the hardware cannot honour well falls back to float32; the choice
is logged once, with its reason. The device queries (gpu_devices,
cpu_flags) are the only functions here that look at the machine.
"""
import collections

BFLOAT16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
BFLOAT16_MIN_COMPUTE_CAPABILITY = (8, 0)
FLOAT16_MIN_COMPUTE_CAPABILITY = (7, 0)

# name: as the driver reports it; compute_capability: (major, minor).
GPU = collections.namedtuple("GPU", ["name", "compute_capability"])


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


def gpu_devices():
    """The GPUs TensorFlow sees, as GPU tuples (empty without one)."""
    import tensorflow as tf2  # the 2.x API lists physical devices
    found = []
    for device in tf2.config.list_physical_devices("GPU"):
        details = tf2.config.experimental.get_device_details(device)
        found.append(GPU(details.get("device_name", device.name),
                         tuple(details.get("compute_capability") or (0, 0))))
    return found


def _capability(version):
    return ".".join(map(str, version))


def choose_precision(requested, use_tpu, gpus, cpu_bfloat16):
    """(precision, why): what a run that asked for `requested` computes in,
    on a TPU or with `gpus` (GPU tuples; all are used, so the weakest
    decides) or on a CPU with or without native bfloat16; `why` is the
    sentence to log (None for float32, which needs no decision)."""
    if requested == "float32":
        return "float32", None
    if use_tpu:
        if requested == "float16":
            return "bfloat16", ("float16 asked for; a TPU computes in bfloat16, "
                                "which needs no loss scaling: computing in bfloat16")
        return "bfloat16", "computing in bfloat16, the TPU's native format"
    if gpus:
        weakest = min(gpus, key=lambda gpu: gpu.compute_capability)
        which = (f"{len(gpus)} GPU(s), the weakest {weakest.name} of compute "
                 f"capability {_capability(weakest.compute_capability)}")
        needed = {"bfloat16": BFLOAT16_MIN_COMPUTE_CAPABILITY,
                  "float16": FLOAT16_MIN_COMPUTE_CAPABILITY}[requested]
        if weakest.compute_capability >= needed:
            scaling = " with dynamic loss scaling" if requested == "float16" else ""
            return requested, (f"computing in {requested}{scaling}: {which} "
                               f"(>= {_capability(needed)})")
        hint = ("; --precision float16 uses its float16 units with loss scaling"
                if requested == "bfloat16"
                and weakest.compute_capability >= FLOAT16_MIN_COMPUTE_CAPABILITY
                else "")
        return "float32", (f"{requested} asked for, but {which} has no fast "
                           f"{requested} (it needs {_capability(needed)}): "
                           f"computing in float32{hint}")
    if requested == "float16":
        return "float32", ("float16 asked for, but there is no GPU and a CPU "
                           "emulates float16, slower than float32: computing in "
                           "float32")
    flags = " / ".join(BFLOAT16_CPU_FLAGS)
    if cpu_bfloat16:
        return "bfloat16", f"computing in bfloat16: this CPU has {flags}"
    return "float32", (f"bfloat16 asked for, but there is no GPU and this CPU "
                       f"lacks {flags}: computing in float32")


def effective_precision(requested, use_tpu, log):
    """The precision a run can honour on this machine; says which and why
    through `log`, once (float32 is always honoured, silently)."""
    if requested == "float32":
        return requested
    gpus = [] if use_tpu else gpu_devices()
    cpu_bfloat16 = not use_tpu and not gpus and cpu_has_bfloat16()
    precision, why = choose_precision(requested, use_tpu, gpus, cpu_bfloat16)
    log(why)
    return precision


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
