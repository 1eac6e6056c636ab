"""What the bot knows and makes beyond the chat: the local knowledge base, image generation and
uploads into OpenAI vector stores."""

from core.knowledge.base import KnowledgeBase, chunk_text
from core.knowledge.images import ImageGenerator

__all__ = ["ImageGenerator", "KnowledgeBase", "chunk_text"]
