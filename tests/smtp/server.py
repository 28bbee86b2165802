"""A real SMTP server for Flowgate's email_send end-to-end tests (aiosmtpd).

Listens on 127.0.0.1 on a free port and prints `{"port": N}` once it accepts; then one JSON
line per message received: envelope sender, recipients, the AUTH login (if any), whether
the session was encrypted, and the raw message. Stops when stdin closes.

  server.py [--tls-cert C --tls-key K] [--implicit-tls] [--auth USER:PASSWORD]

With a certificate, STARTTLS is offered and required (or the whole session is TLS with
--implicit-tls). With --auth, AUTH is required before MAIL.
"""

import argparse
import asyncio
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


class Handler:
    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "login": session.auth_data if session.authenticated else None,
                    "encrypted": server.transport.get_extra_info("ssl_object") is not None,
                    "data": envelope.original_content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 OK"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--auth")
    args = parser.parse_args()

    context = None
    if args.tls_cert:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls_cert, args.tls_key)

    def authenticator(server, session, envelope, mechanism, auth_data):
        user, password = args.auth.split(":", 1)
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == user
            and auth_data.password.decode() == password
        )
        return AuthResult(success=ok, auth_data=auth_data.login.decode() if ok else None)

    starttls = context if context is not None and not args.implicit_tls else None

    def factory():
        return SMTP(
            Handler(),
            hostname="localhost",
            tls_context=starttls,
            require_starttls=starttls is not None,
            authenticator=authenticator if args.auth else None,
            auth_required=bool(args.auth),
            # AUTH waits for STARTTLS when it is offered; with implicit TLS the whole
            # session is encrypted, and without a certificate the test asks for plain AUTH.
            auth_require_tls=starttls is not None,
        )

    async def serve():
        loop = asyncio.get_running_loop()
        server = await loop.create_server(
            factory,
            "127.0.0.1",
            0,
            ssl=context if args.implicit_tls else None,
        )
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        # Runs until the test closes stdin (or dies, which closes it too).
        await loop.run_in_executor(None, sys.stdin.read)
        server.close()

    asyncio.run(serve())


if __name__ == "__main__":
    main()
