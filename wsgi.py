"""The WSGI entry point for gunicorn: `gunicorn -c gunicorn.conf.py wsgi:app`.

No monkey-patching here: gunicorn's gevent worker patches before it imports
this module (docs/deployment.md, "gunicorn and gevent"). `flask run` also finds this file.
"""
from proxy import create_app

app = create_app()
