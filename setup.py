from setuptools import find_packages, setup

setup(
    name="insloc",
    version="0.1.0",
    description="Self-supervised pretraining for detection (InsLoc, MoCo v2) and its transfer",
    python_requires=">=3.9",
    packages=find_packages(include=["insloc", "insloc.*", "dense_match", "dense_match.*"]),
    install_requires=[
        "torch>=2.1,<3",
        "torchvision>=0.16,<1",
        "fvcore>=0.1.5",
        "pycocotools>=2.0.6",
        "opencv-python-headless>=4.8",
        "numpy>=1.23",
        "tqdm>=4.60",
        "tensorboard>=2.10",
        "matplotlib>=3.5",
        "scipy>=1.9,<2",
        "scikit-learn>=1.3,<2",  # linear probes (logistic regression by L-BFGS)
    ],
    extras_require={
        "dev": ["pytest>=7", "pytest-xdist>=3", "black>=24", "ruff>=0.4"],
        "bench": ["scikit-image>=0.21"],
    },
)
