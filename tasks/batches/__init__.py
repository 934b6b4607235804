"""The OpenAI Batch API on the task queue: stored files, batches, their runner and sweep."""
