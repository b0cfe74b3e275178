from importlib.metadata import version

from trainer.training.finish import versions


def test_versions_come_from_package_metadata():
    v = versions()
    # seqeval has no __version__; the installed distribution's version is what the card must show.
    assert v["seqeval"] == version("seqeval") and v["transformers"] == version("transformers")
