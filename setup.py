"""Install promptsg: ``pip install -e .`` (add ``-r requirements-dev.txt`` for tests)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


def read_requirements(name: str) -> list[str]:
    lines = (HERE / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith(('#', '-r'))]


version = {}
exec((HERE / 'promptsg' / 'version.py').read_text(), version)

setup(
    name='promptsg',
    version=version['__version__'],
    description='PromptSG on CLIP for re-identification, in the mmengine style',
    long_description=(HERE / 'README.md').read_text() if (HERE / 'README.md').exists() else '',
    long_description_content_type='text/markdown',
    python_requires='>=3.10',
    packages=find_packages(include=['promptsg', 'promptsg.*']),
    install_requires=read_requirements('requirements.txt'),
    extras_require={
        'dev': read_requirements('requirements-dev.txt'),
        'faiss': ['faiss-cpu>=1.8'],
    },
    entry_points={'console_scripts': ['promptsg=promptsg.__main__:main']},
    license='Apache-2.0',
)
