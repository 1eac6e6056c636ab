"""Generate an image and post it into the conversation."""

from __future__ import annotations

from typing import Literal

from core.plugin import OutboundFile, ToolContext, ToolError, tool


@tool(timeout=120)
async def generate_image(
    ctx: ToolContext,
    prompt: str,
    size: Literal["1024x1024", "1536x1024", "1024x1536"] = "1024x1024",
) -> OutboundFile:
    """Create an image from a description and post it in the conversation.

    Args:
        prompt: a detailed description of the image
        size: width x height in pixels
    """
    images = ctx.services.images
    if images is None:
        raise ToolError("image generation is not configured on this server")
    data = await images.generate(prompt, size)
    return OutboundFile(name="image.png", mime_type="image/png", data=data, title=prompt[:80])
