"""Turning flags into a config: typed --hparams, resume rules."""
import pytest

from gqn import cli_flags
from gqn.config import GQNConfig


def test_hparams_are_typed_like_the_config_field():
    parsed = cli_flags.parse_hparams(["learning_rate_start=1e-4", "seq_length=6",
                                      "share_core_weights=false", "field_of_view=50"])
    assert parsed == {"learning_rate_start": 1e-4, "seq_length": 6,
                      "share_core_weights": False, "field_of_view": 50.0}
    assert isinstance(parsed["field_of_view"], float)  # Optional[float], None by default
    assert isinstance(parsed["seq_length"], int)
    with pytest.raises(cli_flags.FlagError, match="no_such_field"):
        cli_flags.parse_hparams(["no_such_field=1"])
    with pytest.raises(cli_flags.FlagError, match="seq_length='six'"):
        cli_flags.parse_hparams(["seq_length=six"])


def test_resume_keeps_the_model_but_may_change_precision(tmp_path):
    saved = GQNConfig()
    resumed = cli_flags.resolve_config(saved, {"precision": "bfloat16",
                                               "hidden_channels": saved.hidden_channels})
    assert resumed == saved.replace(precision="bfloat16")
    with pytest.raises(cli_flags.FlagError,
                       match=r"--hidden_channels=32 contradicts hidden_channels=256"):
        cli_flags.resolve_config(saved, {"hidden_channels": 32}, "m/gqn_config.json")


def test_a_changed_schedule_length_names_both_flags_that_set_it():
    saved = GQNConfig()
    with pytest.raises(cli_flags.FlagError, match=r"--anneal_steps or --hparams "
                       r"sigma_anneal_steps=300 contradicts sigma_anneal_steps=200000"):
        cli_flags.resolve_config(saved, {"sigma_anneal_steps": 300}, "m/gqn_config.json")
