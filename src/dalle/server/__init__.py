"""``dalle serve``: an OpenAI Images API-compatible HTTP server over the project's pipelines."""
