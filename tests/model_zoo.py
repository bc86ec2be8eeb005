"""Real architectures from the ``transformers`` library, exported with ``torch.onnx``.

Small configurations with random weights (no download). Convolutions are
re-initialized He-style, norms get non-trivial affine parameters, and constant
parameters (layer scales, zero-initialized gates) random ones, so that outputs are
O(1) and every block contributes: with the library's default initialization deep CNN
outputs vanish and a comparison would mean nothing. ``full=True`` gives the published
sizes (for benchmarks and the compile-time bound), the default a configuration small
enough for the test suite that keeps every kind of block.

The zoo, by family (``ZooModel.family``), and what each model brings:

- ``cnn``: ``resnet`` (residual bottlenecks; full: ResNet-50), ``mobilenet_v1``
  (depthwise separable, ReLU6, TensorFlow "same" padding), ``mobilenet_v2`` (inverted
  residuals, asymmetric "same" pads), ``efficientnet`` (squeeze-excitation, SiLU;
  full: B0), ``regnet`` (grouped convolutions with squeeze-excitation; full:
  RegNetY-400MF), ``bit`` (weight-standardized convolutions, group norm,
  pre-activation; full: BiT-S-R50x1), ``convnext`` (7×7 depthwise, channels-last
  LayerNorm, layer scale; full: ConvNeXt-T), ``convnextv2`` (global response norm;
  full: ConvNeXt V2-T).
- ``vision transformer``: ``vit`` (plain; full: 6 layers, 384 wide), ``deit``
  (distillation token, teacher head; full: DeiT-S), ``swin`` (shifted windows,
  relative position bias, patch merging; full: Swin-T), ``swinv2`` (cosine
  attention, log-spaced continuous position bias; full: Swin V2-T, 256², window 8),
  ``pvt_v2`` (spatial-reduction attention, depthwise conv in the MLP; full: PVTv2-B0),
  ``mobilevit`` (convolutions unfolded into patches for attention; full:
  MobileViT-XXS, 256²), ``levit`` (attention with learned biases, batch-normed
  linear layers, hardswish; full: LeViT-128S), ``cvt`` (convolutional token
  embedding and depthwise-conv q/k/v projections; full: CvT-13).
- ``detection/segmentation``: ``segformer`` (MiT encoder and all-MLP decoder,
  semantic logits at 1/4 resolution; full: MiT-B0 at 512²), ``upernet`` (UperNet
  head, pyramid pooling with adaptive average pools and bilinear upsampling, on a
  ConvNeXt backbone; full: ConvNeXt-T at 192², not the published 512²), ``dpt``
  (dense prediction transformer for depth: ViT, reassembly with transposed
  convolutions, fusion; full: 4 layers of ViT-S at 384²), ``detr`` (object
  detection: ResNet backbone, sine position encodings, transformer encoder and
  decoder with learned queries; class logits and boxes in one output; full:
  ResNet-50, 6+6 layers, at 512², not the published 800×1333).
- ``text encoder`` (batch 2, the second sequence half padding: the mask must
  matter): ``bert`` (absolute positions), ``roberta`` (positions from the padding
  token), ``distilbert``, ``electra`` (embedding projection), ``albert`` (factorized
  embedding, one layer's weights shared by all), ``deberta_v2`` (disentangled
  relative attention with log buckets), ``t5_encoder`` (relative position buckets,
  RMSNorm, gated-GELU MLP). Full: 4 layers, width 256, 2×128 tokens.
- ``text decoder`` (batch 1, causal): ``gpt2`` (learned positions, GELU MLP),
  ``llama`` (rotary positions, RMSNorm, SiLU-gated MLP, grouped-query attention),
  ``mistral`` (grouped-query attention with a sliding window shorter than the
  sequence), ``qwen2`` (multi-query attention with q/k/v biases), ``phi`` (partial
  rotary, parallel attention and MLP, LayerNorm), ``gpt_neox`` (partial rotary,
  parallel residual), ``gemma`` (GELU-gated MLP, RMSNorm around 1, scaled embedding,
  one key/value head). Full: 4 layers, width 256 (the published ones are 7B-class),
  1×128 tokens.
- ``speech``: ``wav2vec2`` (conv1d feature encoder with group norm, convolutional
  position embedding, post-norm transformer), ``hubert`` (layer-normed conv1d feature
  encoder, pre-norm transformer), ``whisper`` (the encoder: log-mel conv1d stem,
  sinusoidal positions). Full: 1 s of 16 kHz audio with the published 7-layer feature
  encoder and 4 layers 768 wide (published: 12); Whisper-tiny's encoder (4 layers, 384)
  on its 80×3000 log-mel window.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

Inputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class ZooModel:
    """A model of the zoo: how to build it and its example inputs."""

    name: str
    family: str  # "cnn", "vision transformer", "detection/segmentation", ...
    build: Callable[[bool], tuple[object, Inputs]]
    dynamo: bool = False  # GPT-2 exports only with the dynamo exporter
    # The one tensor to compare, from the model's output (default: logits, else the
    # predicted depth, else the last hidden state).
    output: Callable[[Any], Any] | None = None


FAMILIES = (
    "cnn",
    "vision transformer",
    "detection/segmentation",
    "text encoder",
    "text decoder",
    "speech",
)


def _reinit(model: object, inputs: dict[str, object], seed: int) -> None:
    """He-style weights, then batch-norm statistics taken from ``inputs`` (one pass,
    layer by layer), so that activations keep unit scale through residual sums."""
    import torch
    from torch.nn.utils import parametrize

    torch.manual_seed(seed)
    done: set[int] = set()

    def put(module: torch.nn.Module, name: str, value: torch.Tensor) -> None:
        # A weight-normed convolution (wav2vec2's position embedding) takes the new
        # value through its parametrization.
        if parametrize.is_parametrized(module, name):
            setattr(module, name, value)
            for p in module.parametrizations[name].parameters():
                done.add(id(p))
        else:
            getattr(module, name).copy_(value)
            done.add(id(getattr(module, name)))

    with torch.no_grad():
        for module in model.modules():  # type: ignore[attr-defined]
            if isinstance(module, torch.nn.modules.conv._ConvNd):
                kernel = math.prod(module.kernel_size)
                if module.transposed:  # each output sees kernel/stride taps per input
                    kernel = max(1, kernel // math.prod(module.stride))
                fan_in = module.in_channels // module.groups * kernel
                weight = torch.randn(module.weight.shape) * (2.0 / fan_in) ** 0.5
                put(module, "weight", weight)
                if module.bias is not None:
                    put(module, "bias", torch.randn(module.bias.shape) * 0.1)
            elif isinstance(module, torch.nn.Linear):
                put(module, "weight", torch.randn(module.weight.shape) * module.in_features**-0.5)
                if module.bias is not None:
                    put(module, "bias", torch.randn(module.bias.shape) * 0.1)
            elif _is_norm(module):
                weight = getattr(module, "weight", None)
                if isinstance(weight, torch.Tensor):  # a buffer in frozen batch norms
                    # Gemma's RMSNorm scales by (1 + weight): keep the scale in 0.5..1.5
                    offset = 1.0 if float(weight.abs().max()) == 0 else 0.0
                    put(module, "weight", torch.rand(weight.shape) + 0.5 - offset)
                bias = getattr(module, "bias", None)
                if isinstance(bias, torch.Tensor):
                    put(module, "bias", torch.randn(bias.shape) * 0.1)
        # What is left constant (layer scales of 1e-6, zero gates, zero biases of
        # attention tables) would hide the block it scales: random values instead.
        for param in model.parameters():  # type: ignore[attr-defined]
            if id(param) in done or param.numel() < 2:
                continue
            if float(param.max()) == float(param.min()):
                if float(param.max()) == 0:
                    param.copy_(torch.randn(param.shape) * 0.5)
                else:
                    param.copy_(torch.rand(param.shape) * 0.5 + 0.5)
    model.eval()  # type: ignore[attr-defined]

    def calibrate(module: torch.nn.Module, args: tuple) -> None:
        x = args[0]
        dims = (0, *range(2, x.dim()))
        mean, var = module.running_mean, module.running_var
        assert isinstance(mean, torch.Tensor) and isinstance(var, torch.Tensor)
        if x.numel() < 64 * x.shape[1]:  # few samples per channel (a pooled vector, a
            # 7×7 map): only scaled, subtracting their mean would cancel the signal
            # and amplify rounding differences between runtimes
            mean.zero_()
            var.fill_(float(x.pow(2).mean()) + 1e-3)
        else:
            # One variance per layer, not per channel: whitening nearly constant
            # channels would amplify rounding differences between runtimes.
            mean.copy_(x.mean(dims))
            var.fill_(float(x.var(dims, unbiased=False).mean()) + 1e-3)

    norms = [m for m in model.modules() if _is_batch_norm(m)]  # type: ignore[attr-defined]
    hooks = [m.register_forward_pre_hook(calibrate) for m in norms]
    with torch.no_grad():
        model(**inputs)  # type: ignore[operator]
    for hook in hooks:
        hook.remove()


def _is_batch_norm(module: object) -> bool:
    """Batch norms, frozen ones (DETR's backbone: statistics and affine as buffers)
    included."""
    import torch

    return _is_norm(module) and isinstance(getattr(module, "running_var", None), torch.Tensor)


def _is_norm(module: object) -> bool:
    """Batch, layer, group and RMS norms, the library's own classes included."""
    import torch

    if isinstance(
        module,
        torch.nn.modules.batchnorm._BatchNorm
        | torch.nn.LayerNorm
        | torch.nn.GroupNorm
        | torch.nn.RMSNorm,
    ):
        return True
    name = type(module).__name__
    return name.endswith(("LayerNorm", "RMSNorm", "GroupNorm", "BatchNorm2d"))


# -- inputs


def _image(size: int, seed: int = 0) -> Inputs:
    rng = np.random.default_rng(seed)
    return {"pixel_values": rng.standard_normal((1, 3, size, size)).astype(np.float32)}


def _text(batch: int, seq: int, seed: int, vocab: int = 1000) -> Inputs:
    """Token ids and an attention mask whose second sequence is half padding."""
    rng = np.random.default_rng(seed)
    mask = np.ones((batch, seq), np.int64)
    mask[1, seq // 2 :] = 0  # the second sequence is padded: the mask must matter
    # ids from 5: clear of the special tokens (RoBERTa's padding id 1 shifts positions)
    return {
        "input_ids": rng.integers(5, vocab, (batch, seq)).astype(np.int64),
        "attention_mask": mask,
    }


def _tokens(seq: int, seed: int, vocab: int = 1000) -> Inputs:
    """Token ids and an all-ones attention mask (as ``generate`` passes; without one
    the library looks for packed sequences with ``torch.diff``, which the TorchScript
    exporter lacks)."""
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (1, seq)).astype(np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids)}


def _audio(samples: int, seed: int) -> Inputs:
    rng = np.random.default_rng(seed)
    return {"input_values": rng.standard_normal((1, samples)).astype(np.float32)}


# -- cnn


def _resnet(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.ResNetConfig(num_labels=16)
    else:
        config = tf.ResNetConfig(
            embedding_size=16, hidden_sizes=[32, 64, 96, 128], depths=[1, 1, 2, 1], num_labels=16
        )
    return tf.ResNetForImageClassification(config), _image(224 if full else 64)


def _mobilenet_v1(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    config = tf.MobileNetV1Config(
        depth_multiplier=1.0 if full else 0.25, image_size=224, num_labels=16
    )
    return tf.MobileNetV1ForImageClassification(config), _image(224 if full else 64)


def _mobilenet_v2(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    # tf_padding (the default) writes TensorFlow's "same" padding as explicit,
    # asymmetric Pad nodes: the case that once broke the default schedule.
    config = tf.MobileNetV2Config(
        depth_multiplier=1.0 if full else 0.35, image_size=224, num_labels=16
    )
    return tf.MobileNetV2ForImageClassification(config), _image(224 if full else 96)


def _efficientnet(full: bool) -> tuple[object, Inputs]:
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


def _regnet(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:  # RegNetY-400MF
        config = tf.RegNetConfig(embedding_size=32, hidden_sizes=[48, 104, 208, 440],
                                 depths=[1, 3, 6, 6], groups_width=8, num_labels=16)  # fmt: skip
    else:
        config = tf.RegNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 2],
                                 groups_width=8, num_labels=16)  # fmt: skip
    return tf.RegNetForImageClassification(config), _image(224 if full else 64)


def _bit(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:  # BiT-S-R50x1
        config = tf.BitConfig(layer_type="preactivation", global_padding="SAME", num_labels=16)
    else:
        config = tf.BitConfig(layer_type="preactivation", global_padding="SAME",
                              embedding_size=16, hidden_sizes=[32, 64], depths=[1, 1],
                              num_groups=8, num_labels=16)  # fmt: skip
    return tf.BitForImageClassification(config), _image(224 if full else 64)


def _convnext(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.ConvNextConfig(num_labels=16)  # ConvNeXt-T
    else:
        config = tf.ConvNextConfig(
            hidden_sizes=[16, 32, 48, 64], depths=[1, 1, 2, 1], num_labels=16
        )
    return tf.ConvNextForImageClassification(config), _image(224 if full else 64)


def _convnextv2(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.ConvNextV2Config(num_labels=16)  # ConvNeXt V2-T
    else:
        config = tf.ConvNextV2Config(
            num_stages=2, hidden_sizes=[16, 32], depths=[1, 1], num_labels=16
        )
    return tf.ConvNextV2ForImageClassification(config), _image(224 if full else 64)


# -- vision transformers


def _vit(full: bool) -> tuple[object, Inputs]:
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


def _deit(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:  # DeiT-S
        config = tf.DeiTConfig(hidden_size=384, num_hidden_layers=12, num_attention_heads=6,
                               intermediate_size=1536, num_labels=16)  # fmt: skip
    else:
        config = tf.DeiTConfig(hidden_size=64, num_hidden_layers=1, num_attention_heads=4,
                               intermediate_size=128, image_size=64, patch_size=16,
                               num_labels=16)  # fmt: skip
    return tf.DeiTForImageClassificationWithTeacher(config), _image(224 if full else 64)


def _swin(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.SwinConfig(num_labels=16)  # Swin-T
    else:
        # 64 px, patches of 4: a 16×16 grid, windows of 4, shifted in the second block
        config = tf.SwinConfig(image_size=64, embed_dim=32, depths=[2, 1], num_heads=[2, 4],
                               window_size=4, num_labels=16)  # fmt: skip
    return tf.SwinForImageClassification(config), _image(224 if full else 64)


def _swinv2(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.Swinv2Config(image_size=256, window_size=8, num_labels=16)  # Swin V2-T
    else:
        config = tf.Swinv2Config(image_size=64, embed_dim=32, depths=[2, 1],
                                 num_heads=[2, 4], window_size=4, num_labels=16)  # fmt: skip
    return tf.Swinv2ForImageClassification(config), _image(256 if full else 64)


def _pvt_v2(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.PvtV2Config(num_labels=16)  # B0
    else:
        config = tf.PvtV2Config(**_two_mit_stages(), num_labels=16)
    return tf.PvtV2ForImageClassification(config), _image(224 if full else 64)


def _mobilevit(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:  # MobileViT-XXS
        config = tf.MobileViTConfig(hidden_sizes=[64, 80, 96], expand_ratio=2.0,
                                    neck_hidden_sizes=[16, 16, 24, 48, 64, 80, 320],
                                    num_labels=16)  # fmt: skip
    else:
        config = tf.MobileViTConfig(image_size=64, hidden_sizes=[32, 32, 48], expand_ratio=2.0,
                                    neck_hidden_sizes=[8, 8, 16, 24, 32, 40, 64],
                                    num_labels=16)  # fmt: skip
    return tf.MobileViTForImageClassification(config), _image(256 if full else 64)


def _levit(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:  # LeViT-128S
        config = tf.LevitConfig(hidden_sizes=[128, 256, 384], num_attention_heads=[4, 6, 8],
                                depths=[2, 3, 4], key_dim=[16, 16, 16], num_labels=16)  # fmt: skip
    else:
        config = tf.LevitConfig(image_size=64, hidden_sizes=[32, 48], num_attention_heads=[2, 3],
                                depths=[1, 1], key_dim=[8, 8], mlp_ratio=[2, 2],
                                attention_ratio=[2, 2], num_labels=16)  # fmt: skip
        config.down_ops = config.down_ops[:1]  # one subsampling for two stages
    return tf.LevitForImageClassificationWithTeacher(config), _image(224 if full else 64)


def _cvt(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.CvtConfig(num_labels=16)  # CvT-13
    else:
        # Two stages, the second with the class token (stage i needs more than i
        # blocks: the library indexes its drop-path rates so).
        two = {k: v[1:] for k, v in tf.CvtConfig().to_dict().items()
               if isinstance(v, list) and len(v) == 3}  # fmt: skip
        config = tf.CvtConfig(**{**two, "embed_dim": [16, 32], "num_heads": [1, 2],
                                 "depth": [1, 2]}, num_labels=16)  # fmt: skip
    return tf.CvtForImageClassification(config), _image(224 if full else 64)


# -- detection and segmentation


def _two_mit_stages() -> dict[str, list[int]]:
    """Two stages of the Mix Transformer (PVTv2's and Segformer's encoder): one with
    spatial-reduction attention, one without."""
    return {"num_encoder_blocks": 2, "hidden_sizes": [16, 32], "depths": [1, 1],
            "sr_ratios": [2, 1], "num_attention_heads": [1, 2], "patch_sizes": [7, 3],
            "strides": [4, 2], "mlp_ratios": [4, 4]}  # fmt: skip


def _segformer(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.SegformerConfig(num_labels=16)  # MiT-B0 encoder, decoder 256 wide
    else:
        config = tf.SegformerConfig(**_two_mit_stages(), decoder_hidden_size=32, num_labels=8)
    return tf.SegformerForSemanticSegmentation(config), _image(512 if full else 64)


def _upernet(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    stages = ["stage1", "stage2", "stage3", "stage4"]
    if full:
        # ConvNeXt-T (lists: the backbone concatenates hidden_sizes to a list)
        backbone = tf.ConvNextConfig(hidden_sizes=[96, 192, 384, 768], depths=[3, 3, 9, 3],
                                     out_features=stages)  # fmt: skip
        config = tf.UperNetConfig(backbone_config=backbone, hidden_size=512,
                                  use_auxiliary_head=False, num_labels=16)  # fmt: skip
    else:
        backbone = tf.ConvNextConfig(num_stages=2, hidden_sizes=[16, 32], depths=[1, 1],
                                     out_features=stages[:2])  # fmt: skip
        config = tf.UperNetConfig(backbone_config=backbone, hidden_size=32,
                                  use_auxiliary_head=False, num_labels=8)  # fmt: skip
    # The last feature map is 6×6 (full: 6×6 too): the pyramid's adaptive pools of 1,
    # 2, 3 and 6 cells then tile it exactly, which the TorchScript exporter needs.
    return tf.UperNetForSemanticSegmentation(config), _image(192 if full else 48)


def _dpt(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:
        config = tf.DPTConfig(hidden_size=384, num_hidden_layers=4, num_attention_heads=6,
                              intermediate_size=1536, image_size=384,
                              backbone_out_indices=[0, 1, 2, 3],
                              neck_hidden_sizes=[48, 96, 192, 384],
                              fusion_hidden_size=128)  # fmt: skip
    else:
        config = tf.DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                              intermediate_size=64, image_size=64,
                              backbone_out_indices=[0, 1, 2, 3],
                              neck_hidden_sizes=[8, 16, 32, 32],
                              fusion_hidden_size=16)  # fmt: skip
    return tf.DPTForDepthEstimation(config), _image(384 if full else 64)


def _detr(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    if full:  # DETR-R50 (the published input is 800×1333)
        backbone = tf.ResNetConfig(out_features=["stage4"])
        config = tf.DetrConfig(backbone_config=backbone, num_labels=16)
    else:
        backbone = tf.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32, 48, 64],
                                   depths=[1, 1, 1, 1], out_features=["stage4"])  # fmt: skip
        config = tf.DetrConfig(backbone_config=backbone, d_model=32, encoder_layers=1,
                               decoder_layers=1, encoder_attention_heads=2,
                               decoder_attention_heads=2, encoder_ffn_dim=64,
                               decoder_ffn_dim=64, num_queries=8, num_labels=8)  # fmt: skip
    return tf.DetrForObjectDetection(config), _image(512 if full else 64)


def _detr_output(out: Any) -> Any:
    import torch

    return torch.cat([out.logits, out.pred_boxes], dim=-1)


# -- text encoders


def _bert(full: bool) -> tuple[object, Inputs]:
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


def _encoder_size(full: bool) -> tuple[int, int, int]:
    """(layers, width, tokens per sequence); batch 2."""
    return (4, 256, 128) if full else (1, 64, 16)


def _roberta(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    layers, width, seq = _encoder_size(full)
    config = tf.RobertaConfig(vocab_size=1000, hidden_size=width, num_hidden_layers=layers,
                              num_attention_heads=4, intermediate_size=4 * width,
                              max_position_embeddings=514)  # fmt: skip
    return tf.RobertaModel(config, add_pooling_layer=False), _text(2, seq, 3)


def _distilbert(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    layers, width, seq = _encoder_size(full)
    config = tf.DistilBertConfig(vocab_size=1000, dim=width, n_layers=layers, n_heads=4,
                                 hidden_dim=4 * width)  # fmt: skip
    return tf.DistilBertModel(config), _text(2, seq, 4)


def _electra(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    layers, width, seq = _encoder_size(full)
    config = tf.ElectraConfig(vocab_size=1000, embedding_size=width // 2, hidden_size=width,
                              num_hidden_layers=layers, num_attention_heads=4,
                              intermediate_size=4 * width)  # fmt: skip
    return tf.ElectraModel(config), _text(2, seq, 5)


def _albert(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    layers, width, seq = _encoder_size(full)
    config = tf.AlbertConfig(vocab_size=1000, embedding_size=width // 2, hidden_size=width,
                             num_hidden_layers=max(2, layers), num_attention_heads=4,
                             intermediate_size=4 * width)  # fmt: skip
    return tf.AlbertModel(config, add_pooling_layer=False), _text(2, seq, 6)


def _deberta_v2(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    layers, width, seq = _encoder_size(full)
    config = tf.DebertaV2Config(  # DeBERTa-v3's attention
        vocab_size=1000, hidden_size=width, num_hidden_layers=layers, num_attention_heads=4,
        intermediate_size=4 * width, relative_attention=True, position_buckets=32 if full else 8,
        max_relative_positions=-1, position_biased_input=False, pos_att_type=["p2c", "c2p"],
        norm_rel_ebd="layer_norm", share_att_key=True,
    )  # fmt: skip
    return tf.DebertaV2Model(config), _text(2, seq, 7)


def _t5_encoder(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    layers, width, seq = _encoder_size(full)
    config = tf.T5Config(vocab_size=1000, d_model=width, d_kv=width // 4, d_ff=2 * width,
                         num_layers=layers, num_heads=4, feed_forward_proj="gated-gelu",
                         relative_attention_num_buckets=32 if full else 8,
                         use_cache=False)  # fmt: skip
    return tf.T5EncoderModel(config), _text(2, seq, 8)


# -- text decoders


def _decoder_size(full: bool) -> tuple[int, int, int]:
    """(layers, width, tokens); batch 1."""
    return (4, 256, 128) if full else (1, 64, 16)


def _gpt2(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    layers, width, seq = (4, 256, 128) if full else (2, 64, 16)
    config = tf.GPT2Config(vocab_size=1000, n_positions=256, n_embd=width, n_layer=layers,
                           n_head=4, use_cache=False)  # fmt: skip
    rng = np.random.default_rng(2)
    return tf.GPT2LMHeadModel(config), {
        "input_ids": rng.integers(0, 1000, (1, seq)).astype(np.int64)
    }


def _decoder(
    family: str, seed: int, mlp: int, **config: Any
) -> Callable[[bool], tuple[object, Inputs]]:
    """A ``transformers`` causal LM ``<family>Config`` / ``<family>ForCausalLM`` of
    :func:`_decoder_size`, four heads and an MLP ``mlp`` times the width; ``config`` adds
    the family's own settings (``seq`` in a value is replaced by the token count)."""

    def build(full: bool) -> tuple[object, Inputs]:
        import transformers as tf

        layers, width, seq = _decoder_size(full)
        extra = {k: v(seq, width) if callable(v) else v for k, v in config.items()}
        settings = getattr(tf, f"{family}Config")(
            vocab_size=1000, hidden_size=width, intermediate_size=mlp * width,
            num_hidden_layers=layers, num_attention_heads=4, max_position_embeddings=512,
            use_cache=False, **extra,
        )  # fmt: skip
        return getattr(tf, f"{family}ForCausalLM")(settings), _tokens(seq, seed)

    return build


# -- speech


def _wav2vec2_config(full: bool, **kw: Any) -> Any:
    import transformers as tf

    if full:  # the published feature encoder, 4 of the 12 transformer layers
        return tf.Wav2Vec2Config(num_hidden_layers=4, **kw)
    return tf.Wav2Vec2Config(
        hidden_size=64, num_hidden_layers=1, num_attention_heads=4, intermediate_size=128,
        conv_dim=(32, 32, 32), conv_stride=(5, 2, 2), conv_kernel=(10, 3, 3),
        num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=4, **kw,
    )  # fmt: skip


def _wav2vec2(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    config = _wav2vec2_config(full)
    return tf.Wav2Vec2Model(config), _audio(16000 if full else 1600, 20)


def _hubert(full: bool) -> tuple[object, Inputs]:
    import transformers as tf

    # The large models' variant: layer-normed feature encoder, pre-norm transformer.
    config = _wav2vec2_config(full, feat_extract_norm="layer", do_stable_layer_norm=True)
    hubert = tf.HubertConfig(**config.to_dict())
    return tf.HubertModel(hubert), _audio(16000 if full else 1600, 21)


def _whisper(full: bool) -> tuple[object, Inputs]:
    import transformers as tf
    from transformers.models.whisper.modeling_whisper import WhisperEncoder

    if full:
        config = tf.WhisperConfig()  # Whisper-tiny: 4 layers, 384 wide, 80×3000 log-mel
    else:
        config = tf.WhisperConfig(d_model=64, encoder_layers=1, encoder_attention_heads=4,
                                  encoder_ffn_dim=128, max_source_positions=50)  # fmt: skip
    frames = 2 * config.max_source_positions
    rng = np.random.default_rng(22)
    mel = rng.standard_normal((1, config.num_mel_bins, frames)).astype(np.float32)
    return WhisperEncoder(config), {"input_features": mel}


MODELS: dict[str, ZooModel] = {
    m.name: m
    for m in (
        ZooModel("resnet", "cnn", _resnet),
        ZooModel("mobilenet_v1", "cnn", _mobilenet_v1),
        ZooModel("mobilenet_v2", "cnn", _mobilenet_v2),
        ZooModel("efficientnet", "cnn", _efficientnet),
        ZooModel("regnet", "cnn", _regnet),
        ZooModel("bit", "cnn", _bit),
        ZooModel("convnext", "cnn", _convnext),
        ZooModel("convnextv2", "cnn", _convnextv2),
        ZooModel("vit", "vision transformer", _vit),
        ZooModel("deit", "vision transformer", _deit),
        ZooModel("swin", "vision transformer", _swin),
        ZooModel("swinv2", "vision transformer", _swinv2),
        ZooModel("pvt_v2", "vision transformer", _pvt_v2),
        ZooModel("mobilevit", "vision transformer", _mobilevit),
        ZooModel("levit", "vision transformer", _levit),
        ZooModel("cvt", "vision transformer", _cvt),
        ZooModel("segformer", "detection/segmentation", _segformer),
        ZooModel("upernet", "detection/segmentation", _upernet),
        ZooModel("dpt", "detection/segmentation", _dpt),
        ZooModel("detr", "detection/segmentation", _detr, output=_detr_output),
        ZooModel("bert", "text encoder", _bert),
        ZooModel("roberta", "text encoder", _roberta),
        ZooModel("distilbert", "text encoder", _distilbert),
        ZooModel("electra", "text encoder", _electra),
        ZooModel("albert", "text encoder", _albert),
        ZooModel("deberta_v2", "text encoder", _deberta_v2),
        ZooModel("t5_encoder", "text encoder", _t5_encoder),
        ZooModel("gpt2", "text decoder", _gpt2, dynamo=True),
        ZooModel("llama", "text decoder", _decoder("Llama", 10, 2, num_key_value_heads=2)),
        ZooModel(
            "mistral",
            "text decoder",
            _decoder(
                "Mistral", 11, 2, num_key_value_heads=2, sliding_window=lambda seq, _: seq // 2
            ),
        ),
        ZooModel("qwen2", "text decoder", _decoder("Qwen2", 12, 2, num_key_value_heads=1)),
        ZooModel("phi", "text decoder", _decoder("Phi", 13, 4)),
        ZooModel("gpt_neox", "text decoder", _decoder("GPTNeoX", 14, 4)),
        ZooModel(
            "gemma",
            "text decoder",
            _decoder("Gemma", 15, 2, num_key_value_heads=1, head_dim=lambda _, width: width // 4),
        ),
        ZooModel("wav2vec2", "speech", _wav2vec2),
        ZooModel("hubert", "speech", _hubert),
        ZooModel("whisper", "speech", _whisper),
    )
}


def _default_output(out: Any) -> Any:
    for field in ("logits", "predicted_depth", "last_hidden_state"):
        if getattr(out, field, None) is not None:
            return getattr(out, field)
    raise TypeError(f"no logits, predicted_depth or last_hidden_state in {type(out).__name__}")


def torch_model(name: str, *, full: bool = False, seed: int = 0):
    """Model ``name`` in PyTorch, re-initialized, returning one plain tensor; returns
    (module in eval mode, inputs)."""
    import torch

    zoo = MODELS[name]
    torch.manual_seed(seed)  # weights that the re-initialization leaves (embeddings)
    model, inputs = zoo.build(full)
    _reinit(model, {k: torch.from_numpy(v) for k, v in inputs.items()}, seed)
    select = zoo.output or _default_output

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, *args: torch.Tensor) -> torch.Tensor:
            """The model's logits (or last hidden state) as one plain tensor."""
            return select(self.inner(**dict(zip(inputs, args, strict=True))))

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


@functools.cache
def example_inputs(name: str, full: bool = False) -> Inputs:
    """The example inputs of model ``name`` (building the model once to get them)."""
    return MODELS[name].build(full)[1]


def dynamic_axes(name: str) -> dict[str, dict[int, str]]:
    """The axes a serving export leaves dynamic: ``batch`` and ``seq`` for text models
    (every input), ``batch`` for the others; the output's first axis is the batch."""
    zoo = MODELS[name]
    text = zoo.family.startswith("text")
    inputs = example_inputs(name)
    axes: dict[str, dict[int, str]] = {
        k: ({0: "batch", 1: "seq"} if text else {0: "batch"}) for k in inputs
    }
    axes["output"] = {0: "batch"}
    return axes


def export_dynamic(name: str, folder: str, *, full: bool = False, seed: int = 0):
    """Write ``folder/<name>_dynamic.onnx`` with :func:`dynamic_axes`; returns (path,
    PyTorch module). The dynamo exporter specializes a dim whose example size is 1, so
    its example inputs are doubled along the batch."""
    import torch

    wrapped, inputs = torch_model(name, full=full, seed=seed)
    axes = dynamic_axes(name)
    dynamo = MODELS[name].dynamo
    if dynamo:
        inputs = {k: np.concatenate([v, v]) for k, v in inputs.items()}
    args = tuple(torch.from_numpy(v) for v in inputs.values())
    path = os.path.join(folder, f"{name}{'_full' if full else ''}_dynamic.onnx")
    if not os.path.exists(path):
        tmp = path + ".tmp"
        with torch.no_grad():
            if dynamo:
                from torch.export import Dim

                shapes = tuple({i: Dim.AUTO for i in axes[k]} for k in inputs)
                torch.onnx.export(
                    wrapped, args, tmp, input_names=list(inputs), output_names=["output"],
                    dynamo=True, opset_version=18, dynamic_shapes=(shapes,),
                    external_data=False,
                )  # fmt: skip
            else:
                torch.onnx.export(
                    wrapped, args, tmp, input_names=list(inputs), output_names=["output"],
                    dynamo=False, opset_version=17, dynamic_axes=axes,
                )  # fmt: skip
        os.replace(tmp, path)
    return path, wrapped


def resized_inputs(name: str, batch: int, seq: int, seed: int = 0, *, full: bool = False) -> Inputs:
    """Inputs of model ``name`` at another batch size, and for text models another
    sequence length (as :func:`_text` and :func:`_tokens` make them: an encoder's later
    sequences half padding, a decoder's mask all ones); the others are random at the
    example's scale."""
    zoo = MODELS[name]
    example = example_inputs(name, full)
    rng = np.random.default_rng(seed)
    out: Inputs = {}
    for key, value in example.items():
        if zoo.family.startswith("text"):
            if key == "attention_mask":
                mask = np.ones((batch, seq), value.dtype)
                if zoo.family == "text encoder":
                    mask[1:, seq // 2 :] = 0
                out[key] = mask
            elif key == "token_type_ids":
                out[key] = np.zeros((batch, seq), value.dtype)
            else:
                out[key] = rng.integers(5, 1000, (batch, seq)).astype(value.dtype)
        else:
            scale = float(np.std(value)) or 1.0
            noise = rng.standard_normal((batch, *value.shape[1:])) * scale
            out[key] = noise.astype(value.dtype)
    return out
