"""Running the package's own command lines as stages of a longer job (the
demo, the capture experiment): each in a fresh process, exactly as a user
types it, its progress shown and its whole output logged."""
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_stage(log_dir, title, *command):
    """Runs one command line of the product; stops the job if it fails."""
    print(f"\n=== {title}\n$ python {' '.join(map(str, command))}", flush=True)
    start = time.time()
    env = dict(os.environ,
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    slug = "".join(c if c.isalnum() else "_" for c in title.lower()).strip("_")
    log_path = os.path.join(log_dir, slug.replace("__", "_") + ".log")
    os.makedirs(log_dir, exist_ok=True)
    with open(log_path, "w") as log, subprocess.Popen(
            [sys.executable, *map(str, command)], cwd=REPO, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as process:
        for line in process.stdout:
            log.write(line)
            message = _without_log_prefix(line.rstrip())
            if _worth_showing(message):
                print("  " + message, flush=True)
    print(f"--- {time.time() - start:.0f} s, full log: {log_path}", flush=True)
    if process.returncode:
        sys.exit(f"stopped: '{title}' failed (exit {process.returncode}); "
                 f"see {log_path}")


def _without_log_prefix(line):
    return line.split("] ", 1)[1] if line.startswith(("I1", "W1", "E1")) else line


def _worth_showing(message):
    """Progress and results, not TensorFlow's chatter (judged without the
    log prefix, whose source file name, e.g. error_handling.py, would
    otherwise pass for a key)."""
    keys = ("step ", "eval at step", "wrote", "error", "SavedModel", "scenes",
            "photos", "metrics", "grid", "fly-around", "strip", "±", "baseline",
            "elbo", "preview", "pairing", "lacks", "poses", "roll", "held out",
            "registered", "cameras", "field of view")
    noise = ("tensorflow/core", "cuda", "WARNING", "Instructions", "INFO:tensorflow",
             "global_step/sec", "%|", "Saving dict for global step", "checkpoint_path")
    return any(key in message for key in keys) and not any(n in message for n in noise)
