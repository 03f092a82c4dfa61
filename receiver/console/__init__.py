"""The web console at ``/console``: server-rendered pages (jinja2, autoescaped; no JavaScript) in Chinese and
English for the people who operate corpsync. ``routes.routes()`` is its part of the app's route table."""
