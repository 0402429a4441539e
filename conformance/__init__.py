"""lossconf conformance harness: backends, comparison, pytest plugin, reports."""
