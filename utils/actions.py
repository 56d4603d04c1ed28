"""Stable import path of the actor (`from utils.actions import Actor`); the code lives in utils/localization/actions.py."""

from utils.localization.actions import *  # noqa: F401,F403
from utils.localization.actions import ACTION_NAMES, IMAGE_SIZE, MIN_BOX_SIDE, NUM_ACTIONS_SUPPORTED, STEP_FACTOR, Actor  # noqa: F401
