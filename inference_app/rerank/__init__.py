"""``POST /v1/rerank`` (and ``/rerank``, ``/v2/rerank``): documents ranked by relevance to a
query, by a reranker model, in the shape llama-server, Jina, Cohere and vLLM answer."""
