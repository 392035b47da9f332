"""Tests of empirical.models: shapes, feature/classifier interface, parameter counts, one SGD step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from empirical.models import MODELS, build_model, count_parameters

torch.set_num_threads(1)

SMALL = ["mlp", "vgg11", "resnet18", "densenet"]
BIG = [name for name in MODELS if name not in SMALL and not MODELS[name].sample_indices]  # the UFM: test_ufm.py


def _check_interface(model, x, num_classes):
    model.eval()
    seen = {}

    def hook(module, inputs, output):  # returns None: leaves the output alone
        seen.setdefault("h", inputs[0])

    handle = model.fc.register_forward_hook(hook)
    with torch.no_grad():
        logits, feats = model.forward_with_features(x)
        plain = model(x)
    handle.remove()
    n = x.shape[0]
    assert logits.shape == (n, num_classes)
    assert feats.shape == (n, model.feature_dim)
    assert model.feature_dim == model.fc.in_features and model.fc.out_features == num_classes
    assert model.fc.bias is not None
    torch.testing.assert_close(plain, logits)
    torch.testing.assert_close(seen["h"], feats)  # features = the input of fc (math §7.1)
    torch.testing.assert_close(model.features(x), feats)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", SMALL)
@pytest.mark.parametrize("channels", [1, 3])
def test_small_models_interface(name, channels):
    torch.manual_seed(0)
    model = build_model(name, num_classes=10, input_shape=(channels, 32, 32))
    _check_interface(model, torch.randn(2, channels, 32, 32), 10)


@pytest.mark.parametrize("name", BIG)
def test_big_models_interface(name):
    # 16x16 inputs keep CPU time small; the layouts adapt to any size >= 8.
    torch.manual_seed(0)
    model = build_model(name, num_classes=7, in_channels=3, input_shape=(3, 16, 16))
    _check_interface(model, torch.randn(2, 3, 16, 16), 7)


@pytest.mark.parametrize("name", SMALL)
def test_one_sgd_step_reduces_mse(name):
    torch.manual_seed(1)
    channels = 1 if name in ("vgg11", "densenet") else 3
    model = build_model(name, num_classes=4, input_shape=(channels, 32, 32))
    model.train()
    x, y = torch.randn(4, channels, 32, 32), torch.tensor([0, 1, 2, 3])
    target = F.one_hot(y, 4).float()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9, weight_decay=5e-4)
    loss0 = F.mse_loss(model(x), target)
    opt.zero_grad()
    loss0.backward()
    opt.step()
    with torch.no_grad():
        loss1 = F.mse_loss(model(x), target)
    assert loss1.item() < loss0.item()


EXPECTED_PARAMS = {  # 3 input channels, 10 classes
    "resnet18": 11_173_962,
    "resnet34": 21_282_122,
    "resnet50": 23_520_842,
    "densenet121": 6_956_298,
}


def test_parameter_counts():
    counts = {}
    with torch.device("meta"):  # no memory, no initialisation cost
        for name in MODELS:
            shape = (3, 32, 32)
            counts[name] = count_parameters(build_model(name, num_classes=10, input_shape=shape, num_samples=100))
    for name, expected in EXPECTED_PARAMS.items():
        assert counts[name] == expected, name
    assert 0.9e6 < counts["densenet40"] < 1.1e6  # Huang et al.: 1.0M
    assert 0.7e6 < counts["densenet_bc100"] < 0.9e6  # Huang et al.: 0.8M
    assert counts["vgg11"] < counts["vgg13"] < counts["vgg16"] < counts["vgg19"]
    assert 9e6 < counts["vgg11"] < 10e6 and 19e6 < counts["vgg19"] < 21e6
    with torch.device("meta"):
        one = count_parameters(build_model("resnet18", num_classes=10, in_channels=1))
    assert one == EXPECTED_PARAMS["resnet18"] - 2 * 9 * 64  # stem sees 1 channel instead of 3


def test_feature_dims():
    with torch.device("meta"):
        models = {n: build_model(n, num_classes=10, input_shape=(3, 32, 32), num_samples=100) for n in MODELS}
    dims = {n: m.feature_dim for n, m in models.items()}
    for m in models.values():  # its CUDA backward breaks torch.use_deterministic_algorithms
        assert not any(isinstance(mod, torch.nn.AdaptiveAvgPool2d) for mod in m.modules())
    assert dims["resnet18"] == dims["resnet34"] == 512 and dims["resnet50"] == 2048
    assert all(dims[f"vgg{d}"] == 512 for d in (11, 13, 16, 19))
    assert dims["densenet40"] == 448 and dims["densenet121"] == 1024 and dims["mlp"] == 256 and dims["ufm"] == 64


def test_other_input_sizes():
    torch.manual_seed(0)
    # sklearn digits: 8x8 native for the MLP, flat vectors, and 8x8 for conv nets
    mlp = build_model("mlp", num_classes=10, input_shape=(1, 8, 8), widths=(32, 16), batch_norm=True)
    _check_interface(mlp, torch.randn(3, 1, 8, 8), 10)
    assert mlp.feature_dim == 16
    flat = build_model("mlp", num_classes=3, input_shape=(5,), widths=())
    _check_interface(flat, torch.randn(3, 5), 3)
    assert flat.feature_dim == 5
    for name in ("vgg11", "resnet18", "densenet"):
        _check_interface(build_model(name, num_classes=10, input_shape=(1, 8, 8)), torch.randn(2, 1, 8, 8), 10)
    # STL-10 size
    vgg = build_model("vgg11", num_classes=10, input_shape=(3, 96, 96), width_mult=0.25)
    _check_interface(vgg, torch.randn(2, 3, 96, 96), 10)
    dense = build_model("densenet", num_classes=10, input_shape=(3, 32, 32), depth=22, growth_rate=4)
    _check_interface(dense, torch.randn(2, 3, 32, 32), 10)


def test_build_model_errors():
    with pytest.raises(ValueError, match="unknown model 'alexnet'.*resnet18.*densenet40"):
        build_model("alexnet", num_classes=10, in_channels=3)
    with pytest.raises(ValueError, match="image input"):
        build_model("resnet18", num_classes=10, input_shape=(64,))
    with pytest.raises(ValueError, match="disagrees"):
        build_model("vgg11", num_classes=10, in_channels=1, input_shape=(3, 32, 32))
    with pytest.raises(ValueError, match="needs input_shape"):
        build_model("mlp", num_classes=10, in_channels=1)
    with pytest.raises(ValueError, match="num_classes"):
        build_model("mlp", num_classes=1, input_shape=(4,))
    with pytest.raises(ValueError, match="4 \\+ 6 n"):
        build_model("densenet", num_classes=10, in_channels=3, depth=41)
    assert build_model("ResNet-18", num_classes=10, in_channels=3).feature_dim == 512
