import json

import pytest

from gqn.config import PACKAGE_CHOICES, GQNConfig, preset


def test_paper_defaults():
    config = GQNConfig().validate()
    assert (config.image_size, config.pose_dim, config.context_size) == (64, 7, 5)
    assert config.representation == "tower"
    assert (config.hidden_channels, config.canvas_channels, config.z_channels) == (256, 256, 64)
    assert (config.lstm_kernel_size, config.seq_length, config.batch_size) == (5, 12, 36)
    assert (config.learning_rate_start, config.learning_rate_end) == (5e-4, 5e-5)
    assert config.learning_rate_anneal_steps == 1_600_000
    assert (config.sigma_start, config.sigma_end, config.sigma_anneal_steps) == (2.0, 0.7, 200_000)
    # a linear observation mean, ConvLSTM gates without a bias offset
    assert (config.observation_sigmoid, config.forget_bias) == (False, 0.0)


def test_small_presets_and_older_model_dirs_keep_the_package_choices(tmp_path):
    """The small presets keep a sigmoid mean and forget bias +1, and a
    config saved before those fields existed loads as the model it was
    trained as; one saved since keeps what it says."""
    assert PACKAGE_CHOICES == {"observation_sigmoid": True, "forget_bias": 1.0}
    for name in ("tiny", "small"):
        config = preset(name)
        assert (config.observation_sigmoid, config.forget_bias) == (True, 1.0)
    older = json.loads(preset("paper").to_json())
    for field in PACKAGE_CHOICES:
        del older[field]
    path = tmp_path / "gqn_config.json"
    path.write_text(json.dumps(older))
    assert GQNConfig.load(str(path)) == preset("paper").replace(**PACKAGE_CHOICES)
    preset("paper").save(str(path))
    assert GQNConfig.load(str(path)) == preset("paper")


def test_derived_sizes_follow_fields():
    config = GQNConfig(image_size=32, hidden_channels=10, z_channels=3,
                       representation_channels=6)
    assert config.latent_size == 8
    assert config.generator_input_channels == 7 + 6 + 3
    assert config.inference_input_channels == 48 + 7 + 6 + 2 * 10
    assert config.pixels_per_image == 32 * 32 * 3


@pytest.mark.parametrize("field,value,message", [
    ("image_size", 30, "image_size must be divisible by 4, got 30"),
    ("representation", "deepsets", "representation must be one of"),
    ("upsample", "nearest", "upsample must be one of"),
    ("rendered_colour_share", "mean", "rendered_colour_share must be one of"),
    ("rendered_depth_focus", 0.0, "rendered_depth_focus must be > 0"),
    ("depth_loss_weight", -0.5, "depth_loss_weight must be >= 0"),
    ("rendered_sweep_multiple", 0, "rendered_sweep_multiple must be a positive integer"),
    ("rendered_colour_sampling", "nearest", "rendered_colour_sampling must be one of"),
    ("pose_dim", 5, "pose_dim must be 7"),
    ("seq_length", 0, "seq_length must be a positive integer"),
    ("lstm_kernel_size", 4, "lstm_kernel_size must be odd"),
    ("sigma_end", 0.0, "sigma_end must be > 0"),
    ("precision", "float64", "precision must be one of"),
    ("forget_bias", float("inf"), "forget_bias must be finite"),
    ("field_of_view", 180.0, "field_of_view must be between 0 and 180"),
    ("colour_path", True, "colour_path needs the sweep representation"),
    ("depth_loss_weight", 1.0, "depth_loss_weight needs the colour path"),
    ("sweep_depths", 0, "sweep_depths must be a positive integer"),
    ("sweep_depths", 1, "sweep_depths must be at least 2"),
])
def test_validate_names_the_field(field, value, message):
    with pytest.raises(ValueError, match=message):
        GQNConfig().replace(**{field: value})


def test_unknown_field_refused():
    with pytest.raises(ValueError, match="unknown GQNConfig field.*hiden_channels"):
        GQNConfig().replace(hiden_channels=3)


def test_annealed_over_sets_both_schedules():
    config = preset("tiny").annealed_over(300)
    assert (config.learning_rate_anneal_steps, config.sigma_anneal_steps) == (300, 300)
    assert config.replace(learning_rate_anneal_steps=2000, sigma_anneal_steps=2000) == preset("tiny")


def test_json_round_trip(tmp_path):
    config = preset("tiny", representation="pool", upsample="subpixel")
    path = str(tmp_path / "gqn_config.json")
    config.save(path)
    assert GQNConfig.load(path) == config
    assert json.loads(open(path).read())["representation"] == "pool"


def test_load_rejects_bad_json_with_path(tmp_path):
    path = tmp_path / "gqn_config.json"
    path.write_text(json.dumps({"image_size": 62}))
    with pytest.raises(ValueError, match=f"{path}.*image_size"):
        GQNConfig.load(str(path))


def test_presets():
    assert preset("tiny").image_size == 32 and preset("tiny").seq_length == 4
    assert preset("small").hidden_channels == 128
    for name in ("tiny", "small"):  # the short-run settings
        config = preset(name)
        assert (config.representation, config.upsample) == ("sweep", "resize_conv")
        assert (config.learning_rate_start, config.learning_rate_end) == (1e-3, 1e-4)
        assert config.learning_rate_anneal_steps == config.sigma_anneal_steps == 2000
    assert preset("paper") == GQNConfig()
    with pytest.raises(ValueError, match="unknown preset 'huge'"):
        preset("huge")


def test_a_config_saved_before_the_depth_range_came_from_the_data_still_loads():
    """Earlier configs stored the sweep's fixed depth range; the range is
    now every example's own, so those fields are dropped on load and the
    rest is kept."""
    saved = json.loads(preset("tiny").to_json())
    saved.update(sweep_near=0.4, sweep_far=6.0, field_of_view=40.43)
    loaded = GQNConfig.from_json(json.dumps(saved))
    assert loaded == preset("tiny", field_of_view=40.43)
    assert not hasattr(loaded, "sweep_near")


def test_a_preset_with_another_representation_drops_the_colour_path():
    """The small presets' colour path reads the sweep's depth scores: asking
    them for the tower turns it off, asking for both is refused."""
    assert preset("tiny").colour_path
    assert not preset("tiny", representation="tower").colour_path
    with pytest.raises(ValueError, match="colour_path needs the sweep"):
        preset("tiny", representation="tower", colour_path=True)
