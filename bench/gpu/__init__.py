"""The GPU benchmark (issue 26): an offline folder that measures the project on a CUDA machine.

    python -m bench.gpu prepare      # here (registries reachable): .gpu/, git-ignored
    bash .gpu/run.sh                 # there: build llama.cpp with CUDA, measure, table.md
    python -m bench.gpu dry-run      # here: the same run.sh on the CPU, tiny sizes
    python -m bench.gpu table OUT/rows-*.jsonl

See run.sh for the stages and settings, measure.py for what each stage measures.
"""
