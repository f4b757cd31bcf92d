"""The card import pipeline: rows prepared in worker processes, written in batches."""
