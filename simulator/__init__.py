"""An OpenAI-compatible server for tests, benchmarks and key-less offline runs."""

from simulator.script import Fail, Recorded, Text, ToolCalls
from simulator.server import Simulator

__all__ = ["Fail", "Recorded", "Simulator", "Text", "ToolCalls"]
