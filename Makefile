# The README's commands. Every target installs what it needs first; a second install is a no-op.
VENV   ?= .venv
PYTHON := $(VENV)/bin/python
STAMP  := $(VENV)/.install.stamp
# Optional: a package index serving CPU-only torch wheels (see docs/quickstart.md); empty keeps the
# default torch, which on Linux is the CUDA build with its libraries (about 6 GB installed).
TORCH_INDEX_URL ?=

.PHONY: install demo test bench lint clean-demo

install: $(STAMP)

$(STAMP): setup.py
	@test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install -q --upgrade pip
	$(if $(TORCH_INDEX_URL),$(PYTHON) -m pip install -q torch torchvision --index-url $(TORCH_INDEX_URL))
	$(PYTHON) -m pip install -q -e ".[dev,bench]"
	@touch $(STAMP)

# Does pretraining pay? A short InsLoc pretraining of a tiny R-FPN and the positive control (the
# trunk of the same detector trained with labels on other scenes), then a tiny Mask R-CNN
# fine-tuned with few labels from random init, the control and the InsLoc checkpoint (minutes on
# 2 CPU cores).
demo: install
	$(PYTHON) tools/run_demo.py --output-dir output/demo_$$(date +%Y%m%d_%H%M%S)
	@echo "Keypoint matching next (README: Dense features and keypoint matching):"
	@echo "  $(PYTHON) tools/eval_matching.py OUTPUT_DIR output/matching_random   # synthetic warps, random ResNet-50 features"
	@echo "  $(PYTHON) tools/train_dense.py --config-file configs/matching/introspection_R50_dilated.yaml OUTPUT_DIR output/introspection"
	@echo "  $(PYTHON) tools/eval_matching.py --config-file configs/matching/eval_R50_res4.yaml MODEL.WEIGHTS <checkpoint> DATASETS.TEST ../shared/data/PF-WILLOW OUTPUT_DIR output/matching_willow"

# Two test processes (the suite is mostly tiny single-process runs), one math thread each: on 2
# cores this halves the wall time; more threads per process only oversubscribe the cores.
test: install
	OMP_NUM_THREADS=1 $(PYTHON) -m pytest -q -n 2 tests

bench: install
	$(PYTHON) benchmarks/bench_pretrain.py
	$(PYTHON) benchmarks/bench_matching.py

lint: install
	$(PYTHON) -m black -l 100 --check insloc dense_match tools tests benchmarks setup.py
	$(PYTHON) -m ruff check insloc dense_match tools tests benchmarks setup.py

# Every demo run's folder (output/demo_<date>_<time>, about 65 MB each), and nothing else.
clean-demo:
	rm -rf output/demo_*
