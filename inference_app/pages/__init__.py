"""The inference app's HTML pages: batches, the playground, the workers."""
