"""pip-installable form of the Python layers (model, tracker, tools) for users without a ROS workspace.

On a ROS 2 machine, build with colcon instead: CMakeLists.txt generates the messages and installs this same Python
package, the executables, launch and config files (see README).
"""
from setuptools import find_packages, setup

setup(
    name="siamattn_ros",
    version="0.1.0",
    description="SiamAttn single-object tracking: PyTorch model, image tracker and ROS 2 node",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["siamattn_ros", "siamattn_ros.*"]),
    # torch/torchvision are deliberately unpinned: Jetson users bring NVIDIA's builds.
    install_requires=["numpy", "opencv-python-headless", "pyyaml", "torch", "torchvision", "tqdm"],
    extras_require={"bags": ["rosbags"], "plots": ["matplotlib"], "test": ["pytest", "rosbags", "matplotlib"]},
    entry_points={
        "console_scripts": [
            "siamattn-track = siamattn_ros.tools.track:main",
            "siamattn-bench = siamattn_ros.tools.bench:main",
            "siamattn-evaluate = siamattn_ros.tools.evaluate:main",
        ]
    },
)
