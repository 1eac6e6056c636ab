"""The console adapter: chat with the engine in a terminal, through the same turn path."""

from bots.console.chat import OFFLINE_BANNER, chat
from bots.console.reply import ConsoleReply

__all__ = ["OFFLINE_BANNER", "ConsoleReply", "chat"]
