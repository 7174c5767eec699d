"""The HTTP edge every API family shares: one error class that knows its status and code
(``errors``), how each family shapes an error (``families``), and one endpoint decorator and
one JSON body reader (``endpoint``). The loop that turns a request's events into a response
is ``inference_app.replies``."""
