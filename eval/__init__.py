"""Evaluation harness: gold set and XQuAD through the same pipeline users get.

Retrieval metrics now; answers and grounding (judges, reports, ``rag eval``) build on
the same datasets and metrics.
"""

from eval.datasets import Dataset, EvalItem, load_dataset, load_gold, load_xquad

__all__ = ["Dataset", "EvalItem", "load_dataset", "load_gold", "load_xquad"]
