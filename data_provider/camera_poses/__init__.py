"""Camera poses from the tools users have, normalised into one GQN frame.

frame: CameraSet, the GQN frame and normalise_cameras (object at the origin, z up, DeepMind's yaw).
posed_photos: PosedPhotos, what every reader returns for one scene.
transforms_json: NeRF transforms.json (instant-ngp, nerfstudio, capture apps).
colmap_model: COLMAP sparse models, text or binary.
sfm: COLMAP structure-from-motion (pycolmap) for photos without poses.
"""
