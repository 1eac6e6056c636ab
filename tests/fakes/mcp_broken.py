"""A stdio peer that initializes like an MCP server, then answers tools/list with a malformed
list (a tool whose name is a number and that has no inputSchema). Only for the test of that case:
a real server written with the SDK cannot send such a list."""

from __future__ import annotations

import json
import sys


def main() -> None:
    for line in sys.stdin:
        message = json.loads(line)
        if "id" not in message:
            continue
        if message["method"] == "initialize":
            result = {
                "protocolVersion": message["params"]["protocolVersion"],
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "broken", "version": "0"},
            }
        elif message["method"] == "tools/list":
            result = {"tools": [{"name": 5, "description": ["not", "text"]}]}
        else:
            result = {}
        print(json.dumps({"jsonrpc": "2.0", "id": message["id"], "result": result}), flush=True)


if __name__ == "__main__":
    main()
