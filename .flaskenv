# Read by the flask command (python-dotenv); .env, for secrets, is read too and wins.
FLASK_APP=wsgi
FLASK_RUN_PORT=5000
