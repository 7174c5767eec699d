"""The web pages: catalog, workers, batches, playground, usage, sign-in.

Each app keeps the views of its own rows (``models_app.pages``, ``inference_app.pages.workers``,
``inference_app.pages``); this package routes them all (``project.pages.urls``) and holds what
they share: access rules, the static file view, the usage charts.
"""
