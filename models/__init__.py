"""Models of the reproduction: the RoI embedding net and the recurrent policy agent."""

from models.agent import Agent
from models.net import Net

__all__ = ["Agent", "Net"]
