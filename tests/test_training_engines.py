from typing import get_args, get_type_hints

import pytest

from trainer.config import Config
from trainer.training.engines import ENGINES, get_engine


def test_the_registry_holds_exactly_the_engines_the_config_offers():
    assert set(get_args(get_type_hints(Config)["engine"])) == set(ENGINES)
    assert get_engine("trainer").__module__ == "trainer.training.hf_trainer"
    assert get_engine("accelerate").__module__ == "trainer.training.loop"
    with pytest.raises(ValueError, match="unknown engine 'jax'"):
        get_engine("jax")
