"""Model files: SE save/load round trip, every way a file can be wrong, the inf/NaN guard, atomic writes."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import traverse_util
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

import synthenv
from synthenv.errors import UsageError
from synthenv.io import model_files
from synthenv.proxies.files import SE_KIND as KIND, LoadedProxy, load_se, save_proxy
from synthenv.environment import env_step
from synthenv.proxies.se import SEConfig, SyntheticEnv
from synthenv.tasks.real import make_task

ENV = "CartPole-v0"
META_FIELDS = ("format_version", "kind", "env_id", "observation_space", "action_space", "architecture",
               "training_config", "generation", "score")


@pytest.fixture(scope="module")
def se():
    return SyntheticEnv(make_task(ENV), SEConfig(hidden=8))


@pytest.fixture(scope="module")
def params(se):
    return se.init(jax.random.key(7))


@pytest.fixture
def saved(tmp_path, se, params):
    path = tmp_path / "se.safetensors"
    save_proxy(path, se, params, {"x": 1}, generation=3, score=12.5)
    return path


def flat(params) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in traverse_util.flatten_dict(params, sep="/").items()}


def raw_tensors_and_meta(path):
    with safe_open(str(path), "np") as f:
        meta = json.loads(f.metadata()[model_files.META_KEY])
    return load_file(str(path)), meta


def write_raw(path, tensors, meta) -> None:
    save_file(tensors, str(path), metadata={model_files.META_KEY: json.dumps(meta)})


# ---------------------------------------------------------------------------------------------- round trip

def test_round_trip_params_and_metadata(saved, params):
    loaded = synthenv.load(saved)
    assert isinstance(loaded, LoadedProxy)
    assert loaded.env_id == ENV
    got, want = flat(loaded.params), flat(params)
    assert set(got) == set(want)
    for k in want:
        assert got[k].dtype == want[k].dtype and got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)

    m = loaded.metadata
    for field in META_FIELDS:
        assert field in m, field
    assert m["format_version"] == 1 == model_files.FORMAT_VERSION
    assert m["kind"] == "synthetic_env" == KIND
    assert m["env_id"] == ENV
    assert m["observation_space"] == {"shape": [4], "dtype": "float32"}
    assert m["action_space"] == {"n": 2}
    assert m["architecture"] == {"hidden": 8, "layers": 1, "activation": "leaky_relu", "raw_done_in_td": False,
                                "max_steps": None, "done_bias_init": 0.0}
    assert m["training_config"] == {"x": 1}
    assert m["generation"] == 3
    assert m["score"] == 12.5
    assert loaded.env.config == SEConfig(hidden=8)
    assert "CartPole-v0" in repr(loaded) and "generation=3" in repr(loaded)

    # The env check passes for the right id; read_metadata agrees with what load returns.
    assert load_se(saved, env_id=ENV).metadata == m
    assert model_files.read_metadata(saved) == m


def reset(loaded, key):
    return loaded.as_gymnax().reset(key)


def step(loaded, key, state, action):
    env = loaded.as_gymnax()
    return env_step(env, key, state, jnp.int32(action), env.default_params)


def test_loaded_se_steps_like_its_network(saved):
    se = synthenv.load(saved)
    obs, state = reset(se, jax.random.key(1))
    assert obs.shape == (4,) and obs.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(state.obs), np.asarray(obs))
    assert int(state.time) == 0

    for action in (1, 0):
        tr = step(se, jax.random.key(2), state, action)
        next_obs, reward, done = se.env.predict(se.weights, obs, jnp.int32(action))
        np.testing.assert_allclose(np.asarray(tr.next_obs), np.asarray(next_obs), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(float(tr.reward), float(reward), rtol=1e-6, atol=1e-7)
        assert bool(tr.terminated) == bool(done > 0.5)
        assert not bool(tr.truncated)  # t = 1 is far below the cap
        assert not bool(tr.bad)
        assert float(tr.td_done) == float(bool(done > 0.5))  # raw_done_in_td is off
        assert int(tr.state.time) == (0 if bool(tr.terminated) else 1)  # gymnax auto-resets


@pytest.mark.parametrize("env_id, config", [
    ("Acrobot-v1", SEConfig(hidden=5, activation="prelu")),
    ("CartPole-v1", SEConfig(hidden=4, layers=2, activation="tanh", raw_done_in_td=True)),
])
def test_round_trip_other_tasks_and_architectures(tmp_path, env_id, config):
    se = SyntheticEnv(make_task(env_id), config)
    params = se.init(jax.random.key(0))
    path = tmp_path / "se.safetensors"
    save_proxy(path, se, params, {}, generation=0, score=-1.5)
    loaded = synthenv.load(path, env_id=env_id)
    assert loaded.env.config == config
    assert loaded.metadata["observation_space"]["shape"] == [se.spec.obs_dim]
    assert loaded.metadata["action_space"]["n"] == se.spec.n_actions
    got, want = flat(loaded.params), flat(params)
    assert set(got) == set(want)
    for k in want:
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)
    obs, state = reset(loaded, jax.random.key(1))
    tr = step(loaded, jax.random.key(2), state, se.spec.n_actions - 1)
    next_obs, reward, done = se.predict(params, obs, jnp.int32(se.spec.n_actions - 1))
    np.testing.assert_allclose(np.asarray(tr.next_obs), np.asarray(next_obs), rtol=1e-6, atol=1e-7)
    expected_td_done = float(done) if config.raw_done_in_td else float(bool(done > 0.5))
    assert float(tr.td_done) == pytest.approx(expected_td_done)


def test_step_truncates_at_the_task_cap(saved):
    se = synthenv.load(saved)
    obs, state = reset(se, jax.random.key(1))
    tr = step(se, jax.random.key(2), state.replace(time=jnp.int32(199)), 0)
    assert bool(tr.truncated)  # the 200th step, whether or not the SE's done fired too
    assert int(tr.state.time) == 0  # auto-reset


# ---------------------------------------------------------------------------------------------- errors

def test_missing_file(tmp_path):
    path = tmp_path / "nope.safetensors"
    with pytest.raises(UsageError, match="does not exist") as e:
        synthenv.load(path)
    assert str(path) in str(e.value)


def test_random_bytes_are_corrupt(tmp_path):
    path = tmp_path / "junk.safetensors"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(UsageError, match="not a valid safetensors file"):
        synthenv.load(path)


def test_empty_and_truncated_files_are_corrupt(tmp_path, saved):
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match="not a valid safetensors file"):
        synthenv.load(empty)
    cut = tmp_path / "cut.safetensors"
    data = saved.read_bytes()
    cut.write_bytes(data[: len(data) - 16])  # header intact, tensor data short
    with pytest.raises(UsageError, match="corrupt|not a valid safetensors file"):
        synthenv.load(cut)


def test_safetensors_without_synthenv_metadata(tmp_path):
    path = tmp_path / "plain.safetensors"
    save_file({"w": np.zeros((2, 2), np.float32)}, str(path))
    with pytest.raises(UsageError, match="not a synthenv model file"):
        synthenv.load(path)
    save_file({"w": np.zeros((2, 2), np.float32)}, str(path), metadata={"other": "x"})
    with pytest.raises(UsageError, match="not a synthenv model file"):
        synthenv.load(path)


def test_metadata_not_json_or_without_version(tmp_path):
    path = tmp_path / "bad_meta.safetensors"
    save_file({"w": np.zeros(2, np.float32)}, str(path), metadata={model_files.META_KEY: "{not json"})
    with pytest.raises(UsageError, match="not JSON"):
        synthenv.load(path)
    write_raw(path, {"w": np.zeros(2, np.float32)}, {"kind": KIND, "env_id": ENV})
    with pytest.raises(UsageError, match="no format_version"):
        synthenv.load(path)


def test_another_kind(tmp_path, params):
    path = tmp_path / "other.safetensors"
    model_files.save(path, flat(params), {"kind": "something_else", "env_id": ENV})
    with pytest.raises(UsageError, match="'something_else'") as e:
        synthenv.load(path)
    assert KIND in str(e.value)
    # The same file is fine for a reader that asks for that kind.
    tensors, meta = model_files.load(path, kind="something_else")
    assert meta["kind"] == "something_else" and set(tensors) == set(flat(params))


def test_newer_format_version(tmp_path, saved):
    tensors, meta = raw_tensors_and_meta(saved)
    path = tmp_path / "future.safetensors"
    write_raw(path, tensors, {**meta, "format_version": 99})
    with pytest.raises(UsageError, match="format version 99") as e:
        synthenv.load(path)
    assert "upgrade" in str(e.value)


def test_env_mismatch(saved):
    with pytest.raises(UsageError) as e:
        load_se(saved, env_id="Acrobot-v1")
    assert "CartPole-v0" in str(e.value) and "Acrobot-v1" in str(e.value)
    with pytest.raises(UsageError, match="Acrobot-v1"):
        synthenv.load(saved, env_id="Acrobot-v1")


def test_tensor_shapes_not_matching_the_architecture(tmp_path, saved):
    tensors, meta = raw_tensors_and_meta(saved)
    path = tmp_path / "wrong_arch.safetensors"
    write_raw(path, tensors, {**meta, "architecture": {**meta["architecture"], "hidden": 9}})
    with pytest.raises(UsageError, match="has shape") as e:
        synthenv.load(path)
    assert "expected" in str(e.value)


def test_tensor_names_not_matching_the_architecture(tmp_path, saved):
    tensors, meta = raw_tensors_and_meta(saved)
    path = tmp_path / "missing_tensor.safetensors"
    dropped = sorted(tensors)[0]
    write_raw(path, {k: v for k, v in tensors.items() if k != dropped}, meta)
    with pytest.raises(UsageError, match="tensor names do not match"):
        synthenv.load(path)


def test_incomplete_or_invalid_se_metadata(tmp_path, saved):
    tensors, meta = raw_tensors_and_meta(saved)
    path = tmp_path / "incomplete.safetensors"
    write_raw(path, tensors, {k: v for k, v in meta.items() if k != "architecture"})
    with pytest.raises(UsageError, match="incomplete SE metadata"):
        synthenv.load(path)
    write_raw(path, tensors, {**meta, "architecture": {**meta["architecture"], "bogus": 1}})
    with pytest.raises(UsageError, match="incomplete SE metadata"):
        synthenv.load(path)
    write_raw(path, tensors, {**meta, "env_id": "Nope-v0"})
    with pytest.raises(UsageError, match="Nope-v0"):
        synthenv.load(path)


# ---------------------------------------------------------------------------------------------- inf/NaN guard

@pytest.mark.parametrize("scale", [1e30, float("nan")])
def test_huge_or_nan_weights_are_flagged_bad(tmp_path, se, params, scale):
    path = tmp_path / "huge.safetensors"
    save_proxy(path, se, jax.tree.map(lambda p: p * scale, params), {}, generation=0, score=0.0)
    loaded = synthenv.load(path)
    obs, state = reset(loaded, jax.random.key(3))
    raw_next, raw_reward, raw_done = loaded.env.predict(loaded.weights, obs, jnp.int32(1))
    assert not (np.all(np.isfinite(raw_next)) and np.isfinite(raw_reward) and np.isfinite(raw_done))
    plain = lambda k, s, a: step(loaded, k, s, a)  # noqa: E731
    for stepper in (plain, jax.jit(plain)):
        tr = stepper(jax.random.key(4), state, 1)
        assert bool(tr.bad)
        assert np.all(np.asarray(tr.next_obs) == 0.0)
        assert np.all(np.isfinite(np.asarray(tr.obs)))
        assert np.all(np.isfinite(np.asarray(tr.state.obs)))
        assert np.isfinite(float(tr.reward))
        assert bool(tr.terminated)
        assert not bool(tr.truncated)
        assert float(tr.td_done) == 1.0


# ---------------------------------------------------------------------------------------------- atomic writes

def test_writes_leave_no_temporary_files(tmp_path, se, params):
    path = tmp_path / "se.safetensors"
    save_proxy(path, se, params, {}, generation=0, score=1.0)
    save_proxy(path, se, params, {}, generation=1, score=2.0)  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["se.safetensors"]
    assert not list(tmp_path.glob("*.tmp")) and not list(tmp_path.glob(".*.tmp"))
    assert synthenv.load(path).metadata["generation"] == 1


def test_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, se, params):
    path = tmp_path / "se.safetensors"
    save_proxy(path, se, params, {}, generation=0, score=1.0)
    before = path.read_bytes()
    with pytest.raises(Exception):
        # An object array cannot be written as a tensor: the write fails half way.
        model_files.save(path, {"w": np.array([object()], dtype=object)}, {"kind": KIND})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["se.safetensors"]


def test_save_creates_missing_folders(tmp_path, se, params):
    path = tmp_path / "a" / "b" / "se.safetensors"
    save_proxy(path, se, params, {}, generation=0, score=1.0)
    assert synthenv.load(path).env_id == ENV
    assert [p.name for p in path.parent.iterdir()] == ["se.safetensors"]
