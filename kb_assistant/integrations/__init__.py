"""Adapters for frameworks users build on (LangChain); each imports its framework lazily."""
