"""An OpenAI-compatible server for tests, benchmarks and key-less offline runs."""

from core.simulator.script import Fail, Recorded, Text, ToolCalls
from core.simulator.server import Simulator

__all__ = ["Fail", "Recorded", "Simulator", "Text", "ToolCalls"]
