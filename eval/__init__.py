"""PolicyQA's evaluation harness: gold questions, metrics, baselines, the external PolicyQA benchmark
and speed figures. Run `python -m eval` (same flags as `policyqa eval`) or `python -m eval.policyqa_bench`."""
