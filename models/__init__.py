"""Models of the reproduction: the 2021 RoI embedding net and recurrent agent, and the successor's
RoI encoder (with decoder) and RoI-feature agent."""

from models.agent import Agent, RoIAgent
from models.encoder import RoIEncoder
from models.net import Net
from models.vgg import VGGRoIEncoder

__all__ = ["Agent", "Net", "RoIAgent", "RoIEncoder", "VGGRoIEncoder"]
