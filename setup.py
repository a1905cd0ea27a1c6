"""Packaging: `pip install .` gives the `backgroundswap` command (the same CLI as run.py)."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
for line in (here / "operations" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)

requirements = [
    line.strip()
    for line in (here / "requirements.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
]

setup(
    name="backgroundswap",
    version=version["__version__"],
    description="Batch background replacement for photos: segment, refine, composite.",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["operations", "operations.*"]),
    py_modules=["run"],
    install_requires=requirements,
    entry_points={"console_scripts": ["backgroundswap = run:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.11",
        "License :: OSI Approved :: MIT License",
        "Topic :: Multimedia :: Graphics",
    ],
)
