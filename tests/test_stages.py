"""What a long job (the demo, the capture experiment) shows of each stage's
output: the progress and the results, not TensorFlow's chatter."""

import pytest

from scripts import stages

PREFIX = "I1204 02:41:44.838564 139940390783872 "


@pytest.mark.parametrize("line, shown", [
    (PREFIX + "training.py:59] step 2/2  loss 2.162e+04  ETA 0m00s", True),
    (PREFIX + "training.py:169] eval at step 2: elbo 2.067e+04  psnr 21.4", True),
    # a source file's name in the prefix is no key ("error_handling.py")
    (PREFIX + "error_handling.py:115] evaluation_loop marked as finished", False),
    # Estimator's own copy of the evaluation and its checkpoint summary
    (PREFIX + "estimator.py:2085] Saving dict for global step 2: elbo = 20665.5", False),
    (PREFIX + "estimator.py:2145] Saving 'checkpoint_path' summary for global step 2", False),
])
def test_a_stage_shows_progress_not_chatter(line, shown, tmp_path, capsys):
    script = tmp_path / "talk.py"
    script.write_text(f"import sys\nprint({line!r}, file=sys.stderr)\n")
    stages.run_stage(tmp_path / "logs", "talk", script)
    printed = capsys.readouterr().out
    message = line.split("] ", 1)[1]
    assert (("  " + message) in printed) == shown, printed
    assert message in (tmp_path / "logs" / "talk.log").read_text()  # always logged
