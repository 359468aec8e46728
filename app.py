"""Local development entry point: `flask --app app run` (threads, no gevent).

Builds the same app as wsgi.py. `python app.py` runs Flask-SocketIO's own
development server instead.
"""
from proxy import create_app

app = create_app()

if __name__ == "__main__":
    import os

    app.extensions["socketio"].run(
        app, host=os.environ.get("HOST", "127.0.0.1"), port=int(os.environ.get("PORT", "5000")), allow_unsafe_werkzeug=True
    )
