"""Real architectures from the ``transformers`` library, exported with ``torch.onnx``.

Small configurations with random weights (no download). Convolutions are
re-initialized He-style and norms get non-trivial affine parameters, so that outputs
are O(1): with the library's default initialization deep CNN outputs vanish and a
comparison would mean nothing. ``full=True`` gives the published sizes (for
benchmarks and the compile-time bound), the default a configuration small enough
for the test suite that keeps every kind of block (depthwise, squeeze-excitation,
asymmetric "same" padding, attention with a mask, causal decoding).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ZooModel:
    """A model of the zoo: how to build it and its example inputs."""

    name: str
    build: Callable[[bool], tuple[object, dict[str, np.ndarray]]]
    dynamo: bool = False  # GPT-2 exports only with the dynamo exporter


def _reinit(model: object, inputs: dict[str, object], seed: int) -> None:
    """He-style weights, then batch-norm statistics taken from ``inputs`` (one pass,
    layer by layer), so that activations keep unit scale through residual sums."""
    import torch

    torch.manual_seed(seed)
    for module in model.modules():  # type: ignore[attr-defined]
        if isinstance(module, torch.nn.Conv2d):
            fan_in = module.in_channels // module.groups * module.kernel_size[0] ** 2
            torch.nn.init.normal_(module.weight, std=(2.0 / fan_in) ** 0.5)
            if module.bias is not None:
                torch.nn.init.normal_(module.bias, std=0.1)
        elif isinstance(module, torch.nn.BatchNorm2d | torch.nn.LayerNorm | torch.nn.GroupNorm):
            if module.weight is not None:
                torch.nn.init.uniform_(module.weight, 0.5, 1.5)
                torch.nn.init.normal_(module.bias, std=0.1)
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.normal_(std=0.1)
                module.running_var.uniform_(0.5, 1.5)
        elif isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=module.in_features**-0.5)
            if module.bias is not None:
                torch.nn.init.normal_(module.bias, std=0.1)
    model.eval()  # type: ignore[attr-defined]

    def calibrate(module: torch.nn.BatchNorm2d, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0]
        # One variance per layer, not per channel: whitening nearly constant channels
        # would amplify rounding differences between runtimes.
        module.running_mean.copy_(x.mean((0, 2, 3)))
        module.running_var.fill_(float(x.var((0, 2, 3), unbiased=False).mean()) + 1e-3)

    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]  # type: ignore[attr-defined]
    hooks = [m.register_forward_pre_hook(calibrate) for m in norms]
    with torch.no_grad():
        model(**inputs)  # type: ignore[operator]
    for hook in hooks:
        hook.remove()


def _image(size: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"pixel_values": rng.standard_normal((1, 3, size, size)).astype(np.float32)}


def _resnet(full: bool) -> tuple[object, dict[str, np.ndarray]]:
    import transformers as tf

    if full:
        config = tf.ResNetConfig(num_labels=16)
    else:
        config = tf.ResNetConfig(
            embedding_size=16, hidden_sizes=[32, 64, 96, 128], depths=[1, 1, 2, 1], num_labels=16
        )
    return tf.ResNetForImageClassification(config), _image(224 if full else 64)


def _mobilenet_v2(full: bool) -> tuple[object, dict[str, np.ndarray]]:
    import transformers as tf

    # tf_padding (the default) writes TensorFlow's "same" padding as explicit,
    # asymmetric Pad nodes: the case that once broke the default schedule.
    config = tf.MobileNetV2Config(
        depth_multiplier=1.0 if full else 0.35, image_size=224, num_labels=16
    )
    return tf.MobileNetV2ForImageClassification(config), _image(224 if full else 96)


def _efficientnet(full: bool) -> tuple[object, dict[str, np.ndarray]]:
    import transformers as tf

    if full:
        config = tf.EfficientNetConfig(  # B0 (the library's default is B7)
            width_coefficient=1.0, depth_coefficient=1.0, hidden_dim=1280, num_labels=16
        )
    else:
        config = tf.EfficientNetConfig(
            width_coefficient=0.25,
            depth_coefficient=0.3,
            image_size=96,
            hidden_dim=320,
            num_labels=16,
        )
    return tf.EfficientNetForImageClassification(config), _image(224 if full else 96)


def _convnext(full: bool) -> tuple[object, dict[str, np.ndarray]]:
    import transformers as tf

    if full:
        config = tf.ConvNextConfig(num_labels=16)  # ConvNeXt-T
    else:
        config = tf.ConvNextConfig(
            hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 2, 1], num_labels=16
        )
    return tf.ConvNextForImageClassification(config), _image(224 if full else 64)


def _vit(full: bool) -> tuple[object, dict[str, np.ndarray]]:
    import transformers as tf

    if full:
        config = tf.ViTConfig(hidden_size=384, num_hidden_layers=6, num_attention_heads=6,
                              intermediate_size=1536, num_labels=16)  # fmt: skip
        size = 224
    else:
        config = tf.ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                              intermediate_size=128, image_size=64, patch_size=16,
                              num_labels=16)  # fmt: skip
        size = 64
    return tf.ViTForImageClassification(config), _image(size)


def _bert(full: bool) -> tuple[object, dict[str, np.ndarray]]:
    import transformers as tf

    layers, width, batch, seq = (4, 256, 2, 128) if full else (2, 64, 2, 16)
    config = tf.BertConfig(
        vocab_size=1000, hidden_size=width, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=4 * width, max_position_embeddings=512,
    )  # fmt: skip
    rng = np.random.default_rng(1)
    mask = np.ones((batch, seq), np.int64)
    mask[1, seq // 2 :] = 0  # the second sequence is padded: the mask must matter
    inputs = {
        "input_ids": rng.integers(0, 1000, (batch, seq)).astype(np.int64),
        "attention_mask": mask,
    }
    return tf.BertModel(config, add_pooling_layer=False), inputs


def _gpt2(full: bool) -> tuple[object, dict[str, np.ndarray]]:
    import transformers as tf

    layers, width, seq = (4, 256, 128) if full else (2, 64, 16)
    config = tf.GPT2Config(vocab_size=1000, n_positions=256, n_embd=width, n_layer=layers,
                           n_head=4, use_cache=False)  # fmt: skip
    rng = np.random.default_rng(2)
    return tf.GPT2LMHeadModel(config), {
        "input_ids": rng.integers(0, 1000, (1, seq)).astype(np.int64)
    }


MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("resnet", _resnet),
        ZooModel("mobilenet_v2", _mobilenet_v2),
        ZooModel("efficientnet", _efficientnet),
        ZooModel("convnext", _convnext),
        ZooModel("vit", _vit),
        ZooModel("bert", _bert),
        ZooModel("gpt2", _gpt2, dynamo=True),
    )
}


def torch_model(name: str, *, full: bool = False, seed: int = 0):
    """Model ``name`` in PyTorch, re-initialized, returning one plain tensor; returns
    (module in eval mode, inputs)."""
    import torch

    zoo = MODELS[name]
    torch.manual_seed(seed)  # weights that the re-initialization leaves (embeddings)
    model, inputs = zoo.build(full)
    _reinit(model, {k: torch.from_numpy(v) for k, v in inputs.items()}, seed)

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            """The model's logits (or last hidden state) as one plain tensor."""
            out = self.inner(**dict(zip(inputs, args, strict=True)))
            return out.logits if hasattr(out, "logits") else out.last_hidden_state

    return Wrapped().eval(), inputs


def export(name: str, folder: str, *, full: bool = False, seed: int = 0):
    """Write ``folder/<name>.onnx``; returns (path, inputs, PyTorch's output)."""
    import torch

    wrapped, inputs = torch_model(name, full=full, seed=seed)
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    with torch.no_grad():
        expected = wrapped(*args).numpy()
    path = os.path.join(folder, f"{name}{'_full' if full else ''}.onnx")
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(
                wrapped, args, tmp, input_names=list(inputs), output_names=["output"],
                dynamo=MODELS[name].dynamo, opset_version=18 if MODELS[name].dynamo else 17,
                external_data=False,
            )  # fmt: skip
        os.replace(tmp, path)
    return path, inputs, expected
