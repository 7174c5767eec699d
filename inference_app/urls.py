from __future__ import annotations

from django.urls import path

from inference_app.anthropic import views as anthropic
from inference_app.batches import views as batches
from inference_app.ollama import create_endpoints as ollama_create
from inference_app.ollama import embeddings as ollama_embeddings
from inference_app.ollama import generation as ollama_generation
from inference_app.ollama import model_endpoints as ollama_models
from inference_app.ollama import status as ollama_status
from inference_app.openai import views as openai
from inference_app.rerank import views as rerank
from inference_app.responses_api import views as responses

urlpatterns = [
    path("v1/models", openai.list_models),
    path("v1/models/<path:name>", openai.retrieve_model),
    path("v1/chat/completions", openai.chat_completions),
    path("v1/completions", openai.completions),
    path("v1/embeddings", openai.embeddings),
    path("v1/rerank", rerank.rerank),
    # As vLLM serves them, for Jina's and Cohere's clients (``project.edge.families``).
    path("rerank", rerank.rerank),
    path("v2/rerank", rerank.rerank),
    path("v1/responses", responses.create_response),
    path("v1/responses/<str:response_id>", responses.response_detail),
    path("v1/responses/<str:response_id>/input_items", responses.input_items),
    path("v1/messages", anthropic.messages),
    path("v1/messages/count_tokens", anthropic.count_tokens),
    path("v1/files", batches.FileListView.as_view()),
    path("v1/files/<str:file_id>", batches.FileDetailView.as_view()),
    path("v1/files/<str:file_id>/content", batches.FileContentView.as_view()),
    path("v1/batches", batches.BatchListView.as_view()),
    path("v1/batches/<str:batch_id>", batches.BatchDetailView.as_view()),
    path("v1/batches/<str:batch_id>/cancel", batches.BatchCancelView.as_view()),
    path("api/chat", ollama_generation.chat),
    path("api/generate", ollama_generation.generate),
    path("api/embed", ollama_embeddings.embed),
    path("api/embeddings", ollama_embeddings.embeddings),
    path("api/ps", ollama_status.ps),
    path("api/version", ollama_status.api_version),
    path("api/pull", ollama_models.pull),
    path("api/tags", ollama_models.tags),
    path("api/show", ollama_models.show),
    path("api/copy", ollama_models.copy),
    path("api/delete", ollama_models.delete),
    path("api/create", ollama_create.create),
    path("api/blobs/<str:digest>", ollama_create.blob),
]
