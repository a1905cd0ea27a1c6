"""Packaging: `pip install .` gives the `backgroundswap` command (the same CLI as run.py) with
the core (MediaPipe); extras add the other backends: `.[torch]`, `.[sd]`, `.[salient]`, `.[ray]`,
`.[service]` (the HTTP server), `.[all]`. The pins are the requirements files' own, so both
ways install the same versions."""

from pathlib import Path

from setuptools import find_packages, setup

here = Path(__file__).parent
version = {}
for line in (here / "operations" / "__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)


def pins(name: str) -> list[str]:
    """A requirements file's own pins (its ``-r`` includes are other layers)."""
    lines = (here / name).read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and line[0] not in "#-"]


torch = pins("requirements-torch.txt")
extras = {
    "torch": torch,
    "sd": torch + pins("requirements-sd.txt"),
    "salient": pins("requirements-salient.txt"),
    "ray": pins("requirements-ray.txt"),
    "service": pins("requirements-service.txt"),
}
extras["all"] = sorted({pin for group in extras.values() for pin in group})

setup(
    name="backgroundswap",
    version=version["__version__"],
    description="Batch background replacement for photos: segment, refine, composite.",
    long_description=(here / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    package_data={"operations.segmenters": ["models/*"]},
    packages=find_packages(include=["operations", "operations.*"]),
    py_modules=["run"],
    install_requires=pins("requirements.txt"),
    extras_require=extras,
    entry_points={"console_scripts": ["backgroundswap = run:main"]},
    classifiers=[
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Programming Language :: Python :: 3.13",
        "License :: OSI Approved :: MIT License",
        "Topic :: Multimedia :: Graphics",
    ],
)
