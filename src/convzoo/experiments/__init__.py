"""The lectures' experiments, each a function that writes its tables and plots."""
