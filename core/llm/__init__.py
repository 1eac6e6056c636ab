"""Model calls over OpenAI's two wire APIs behind one interface."""

from core.llm.chat import ChatClient
from core.llm.client import ModelClient
from core.llm.responses import ResponsesClient
from core.llm.retry import RetryPolicy

__all__ = ["ChatClient", "ModelClient", "ResponsesClient", "RetryPolicy"]
