"""A Python service using the real py-eureka-client, driven over stdin.

Run as a child process by the tests (and the bench): it serves
`GET /hello` on its own loopback port, registers with the Eureka server at
argv[1], then obeys one command per line and answers one JSON line each:

  call APP PATH      do_service(APP, PATH): the body another instance returned
  status VALUE       status_update(VALUE) (Eureka's status override)
  delete-override    delete_status_override()
  stop               clean shutdown (register DOWN, cancel), then exit
"""

from __future__ import annotations

import asyncio
import http.server
import json
import sys
import threading

import py_eureka_client.eureka_client as eureka_client


def serve(name: str) -> int:
    class Hello(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = f"hello from {name}".encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return int(server.server_address[1])


async def main() -> None:
    url, app, instance_id = sys.argv[1], sys.argv[2], sys.argv[3]
    lease = int(sys.argv[4]) if len(sys.argv) > 4 else 3
    interval = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    port = serve(instance_id)
    client = eureka_client.EurekaClient(
        eureka_server=url,
        app_name=app,
        instance_id=instance_id,
        instance_host="127.0.0.1",
        instance_ip="127.0.0.1",
        instance_port=port,
        renewal_interval_in_secs=interval,
        duration_in_secs=lease,
        metadata={"team": "payments", "management.port": str(port)},
    )
    await client.start()
    print("@@", json.dumps({"ready": port}), flush=True)
    loop = asyncio.get_running_loop()
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()
        if not line:
            return
        command, args = line[0], line[1:]
        try:
            if command == "call":
                result: object = await client.do_service(args[0], args[1])
            elif command == "status":
                await client.status_update(args[0])
                result = "ok"
            elif command == "delete-override":
                await client.delete_status_override()
                result = "ok"
            elif command == "stop":
                await client.stop()
                print("@@", json.dumps({"result": "stopped"}), flush=True)
                return
            else:
                result = f"unknown command {command}"
        except Exception as exc:  # the test reads it
            result = f"error: {type(exc).__name__}: {exc}"
        print("@@", json.dumps({"result": result}), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
