"""An OpenAI-compatible server for tests, benchmarks and key-less offline runs."""

from simulator.script import CodeRun, Fail, McpApproval, Recorded, Text, ToolCalls, WebSearch
from simulator.server import Simulator

__all__ = [
    "CodeRun",
    "Fail",
    "McpApproval",
    "Recorded",
    "Simulator",
    "Text",
    "ToolCalls",
    "WebSearch",
]
