"""Installable package: the GQN model (gqn), its data readers and writers
(data_provider) and the command-line entry points."""
from setuptools import find_packages, setup

setup(
    name="gqn-stills",
    version="0.1.0",
    description=("Generative Query Networks (Eslami et al. 2018) on TensorFlow "
                 "1.x Estimator/TPUEstimator, for pretraining on DeepMind's "
                 "gqn-datasets and fine-tuning on real photographs."),
    python_requires=">=3.7,<3.12",
    packages=find_packages(include=["gqn", "gqn.*", "data_provider",
                                    "data_provider.*", "scripts", "scripts.*"]),
    py_modules=["train_gqn_draw", "eval_gqn", "convert_fruit_stills"],
    install_requires=[
        "tensorflow>=1.15,<2.16",
        # TF 2.x ships the Estimator API in its own package; TF 1.15 bundles
        # a matching one, so this pin only bites on 2.x.
        "tensorflow-estimator>=1.15,<2.16",
        "numpy",
        "Pillow",
        "absl-py",
        # progress bars of the converter and structure-from-motion
        "tqdm",
        # the quality benchmark's curves
        "matplotlib",
    ],
    extras_require={
        "tpu": ["cloud-tpu-client"],
        # COLMAP structure-from-motion for `convert_fruit_stills.py --poses sfm`
        "sfm": ["pycolmap"],
        # video clips as captures (`--input clip.mp4`): PyAV ships its own
        # FFmpeg; 18 writes display matrices, which the tests' rotated clip needs
        "video": ["av>=18"],
        "test": ["pytest"],
    },
    entry_points={
        "console_scripts": [
            "gqn-train=train_gqn_draw:run",
            "gqn-eval=eval_gqn:run",
            "gqn-convert-fruit-stills=convert_fruit_stills:run",
            "gqn-render=scripts.render:run",
        ],
    },
)
