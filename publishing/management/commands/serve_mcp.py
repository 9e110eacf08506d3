from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Serve the brands' MCP endpoint (/mcp, streamable HTTP; publishing.mcp_server) with "
        "uvicorn. Behind nginx (deploy/nginx/sourcebook.conf proxies /mcp here); a brand "
        "answers only when its site settings turn its answer endpoint on."
    )

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8001)

    def handle(self, **options):
        import uvicorn

        from publishing.mcp_server import mcp_app

        self.stdout.write(f"MCP endpoint: http://{options['host']}:{options['port']}/mcp")
        uvicorn.run(
            mcp_app(),
            host=options["host"],
            port=options["port"],
            # Clients are told apart as by DRF (NUM_PROXIES: the address nginx appended to
            # X-Forwarded-For), not by uvicorn.
            proxy_headers=False,
            log_level="info",
        )
