"""Canary routing (potion.backends.canary): the deterministic split, the share check, the memory check."""

from __future__ import annotations

import math
import random
import uuid

import pytest

from potion.backends import OpenAIBackend
from potion.backends import canary as canary_mod
from potion.backends.canary import (
    CanaryConfig,
    CanaryError,
    check_memory,
    check_share,
    describe_failure,
    memory_needed,
    open_candidate,
    routes_to_canary,
)
from potion.errors import ModelNotFound

IDS = [uuid.UUID(int=random.Random(i).getrandbits(128)).hex[:16] for i in range(20_000)]


@pytest.mark.parametrize("share", [0.05, 0.1, 0.5, 0.9])
def test_the_share_of_ids_routed_to_the_canary_matches_the_setting(share):
    routed = sum(routes_to_canary(i, share) for i in IDS) / len(IDS)
    # Binomial standard error at n=20,000 is <= 0.0036: five of them.
    assert abs(routed - share) < 0.018


def test_routing_is_deterministic_per_id_and_nested_across_shares():
    first = [routes_to_canary(i, 0.3) for i in IDS[:2000]]
    assert first == [routes_to_canary(i, 0.3) for i in IDS[:2000]]
    # Raising the share only adds ids: a suggestion id never switches back to the stable model.
    small = {i for i in IDS if routes_to_canary(i, 0.1)}
    large = {i for i in IDS if routes_to_canary(i, 0.2)}
    assert small < large


def test_share_zero_and_one_are_never_and_always():
    assert not any(routes_to_canary(i, 0.0) for i in IDS[:1000])
    assert all(routes_to_canary(i, 1.0) for i in IDS[:1000])


@pytest.mark.parametrize("bad", [-0.1, 1.5, 2, "half", None, True, math.nan, math.inf])
def test_a_share_outside_0_1_is_a_clear_error_naming_the_setting(bad):
    with pytest.raises(CanaryError, match=r"'potion\.canary\.share' must be"):
        check_share(bad)
    with pytest.raises(CanaryError, match="potion.canary.share"):
        CanaryConfig(model="m", share=bad)


def test_valid_shares_pass():
    assert check_share(0) == 0.0 and check_share(1) == 1.0 and check_share(0.25) == 0.25
    assert CanaryConfig(model="m", share=0.2).enabled
    assert not CanaryConfig(model="m", share=0.0).enabled
    assert not CanaryConfig(share=0.5).enabled


def test_memory_check_refuses_a_model_that_would_not_fit():
    gib = 1 << 30
    check_memory("big", 2 * gib, 3 * gib)
    check_memory("big", 2 * gib, None)  # unknown: not refused
    with pytest.raises(CanaryError) as info:
        check_memory("big", 5 * gib, 1 * gib)
    message = info.value.user_message()
    assert "canary model big needs about 5.0 GiB" in message and "1.0 GiB are available" in message
    assert "potion.canary.backendUrl" in message


def test_memory_needed_grows_with_the_file(make_gguf):
    small = make_gguf("small.gguf", tensors=[("w", [64, 2], 0)])
    big = make_gguf("big.gguf", tensors=[("w", [64, 512], 0)])
    assert memory_needed(big) - memory_needed(small) >= big.stat().st_size - small.stat().st_size


def test_a_canary_model_that_does_not_exist_is_model_not_found(potion_home):
    with pytest.raises(ModelNotFound):
        open_candidate(CanaryConfig(model="no-such-model", share=0.5))


def test_an_in_process_canary_that_does_not_fit_is_refused_before_loading(
    potion_home, make_gguf, monkeypatch
):
    path = make_gguf("candidate.gguf", tensors=[("w", [64, 2], 0)])
    monkeypatch.setattr(canary_mod, "available_memory", lambda: 1024)
    with pytest.raises(CanaryError, match="needs about"):
        open_candidate(CanaryConfig(model=str(path), share=0.5))
    monkeypatch.setattr(canary_mod, "available_memory", lambda: 64 << 30)
    backend = open_candidate(CanaryConfig(model=str(path), share=0.5))  # fits: a lazy backend, not loaded
    assert type(backend).__name__ == "SupervisedLlamaCpp" and backend.worker_pid is None


def test_a_canary_on_a_server_is_an_openai_backend():
    on_its_own = open_candidate(CanaryConfig(model="cand", backend_url="http://127.0.0.1:9", share=0.5))
    assert isinstance(on_its_own, OpenAIBackend)
    beside_stable = open_candidate(CanaryConfig(model="cand", share=0.5), stable_url="http://127.0.0.1:9")
    assert isinstance(beside_stable, OpenAIBackend)


def test_the_failure_message_says_the_stable_model_keeps_serving():
    text = describe_failure("cand", ModelNotFound("model cand is unknown", hint="run potion models list"))
    assert text.startswith("the canary model cand is not used: model cand is unknown")
    assert "stable model serves every suggestion" in text
