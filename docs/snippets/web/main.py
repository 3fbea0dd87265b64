# web/main.py: your WSGI app; it must answer the health path, /healthz, with 200
import os


def create_app(greeting=None):
    greeting = greeting or os.environ.get("GREETING", "Hello")

    def app(environ, start_response):
        path = environ["PATH_INFO"]
        body = b"ok\n" if path == "/healthz" else f"{greeting} from Gunicorn\n".encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]

    return app


application = create_app()
