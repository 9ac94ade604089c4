#!/usr/bin/python3
"""Writes small random-weight Mono-InternVL checkpoints in the Hugging Face layout.

Deterministic: fixed seeds, one tokenizer trained once and copied into every model.
Run with Debian's /usr/bin/python3 (torch 1.13, sentencepiece). See README.md.
"""
import argparse
import io
import json
import os
import shutil
import sys

import torch
import sentencepiece as spm

SYSTEM_MESSAGE = ("你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, "
                  "是一个有用无害的人工智能助手。")
# Spec §5: added-token order (fine-tune add order).
ADDED_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<quad>", "</quad>", "<ref>", "</ref>", "<box>", "</box>"]
USER_SYMBOLS = ["<|im_start|>", "<|im_end|>"]
SP_VOCAB_SIZE = 448

ENGLISH = """\
Describe this image in one short sentence.
Describe this image in detail, including every object, colour and the layout of the scene.
Read all the text in the image, in reading order.
What is written on the sign? The sign says OPEN from 9 to 5.
A red circle and a blue square on a white background.
A green triangle next to a yellow star, drawn on a grey page.
The quick brown fox jumps over the lazy dog.
A photo of a cat sitting on a wooden table near the window.
A street with cars, people and a tall building under a cloudy sky.
The receipt shows a total of 42.50 dollars, paid on 12 March 2024.
Invoice number 1187, due date 30 April, amount 199 euros.
There are three apples and two bananas in the bowl.
The chart has four bars; the highest one is labelled 2023.
Please answer the question about the picture.
Hello, how are you today? I am fine, thank you.
This is a test of the streaming caption service.
Kafka topics carry images in and captions out.
The model reads the text on the page and writes it back line by line.
A black and white drawing of a house with a garden and a fence.
The word STOP is painted in white letters on a red octagon.
Monday, Tuesday, Wednesday, Thursday, Friday, Saturday, Sunday.
January February March April May June July August September October November December.
zero one two three four five six seven eight nine ten hundred thousand
user assistant system image picture photo text question answer
What colour is the car? The car is blue.
How many people are in the photo? There are five people.
Where was this picture taken? It looks like a beach at sunset.
"""

CHINESE = """\
这是一张图片，图中有一只猫。
请描述这张图片。
请读出图片中的所有文字。
图片上写着：欢迎光临。
一个红色的圆形和一个蓝色的正方形。
今天天气很好，我们去公园散步。
上海是一个大城市。
人工智能助手可以回答问题。
"""


def train_tokenizer():
    """Trains the shared SentencePiece model (BPE, byte fallback) and returns its bytes."""
    lines = [SYSTEM_MESSAGE] * 4 + ENGLISH.splitlines() * 3 + CHINESE.splitlines() * 3
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=out,
        model_type="bpe", vocab_size=SP_VOCAB_SIZE, byte_fallback=True,
        character_coverage=0.998, user_defined_symbols=USER_SYMBOLS,
        unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        normalization_rule_name="identity", add_dummy_prefix=True,
        remove_extra_whitespaces=False, split_digits=True,
        allow_whitespace_only_pieces=True, num_threads=1, minloglevel=2)
    return out.getvalue()


# --- safetensors writer (spec §2 layout) ---------------------------------------------------

def tensor_bytes(t, dtype):
    t = t.detach().contiguous()
    if dtype == "BF16":
        return t.to(torch.bfloat16).view(torch.int16).numpy().astype("<i2").tobytes()
    if dtype == "F32":
        return t.to(torch.float32).numpy().astype("<f4").tobytes()
    if dtype == "F16":
        return t.to(torch.float16).numpy().astype("<f2").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, dtype):
    """u64-LE header length, JSON header padded with spaces to 8 bytes, raw LE data."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        b = tensor_bytes(tensors[name], dtype)
        header[name] = {"dtype": dtype, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(b)]}
        blobs.append(b)
        offset += len(b)
    h = json.dumps(header, separators=(",", ":")).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(len(h).to_bytes(8, "little"))
        f.write(h)
        for b in blobs:
            f.write(b)
    return offset


# --- random weights -------------------------------------------------------------------------

class Init:
    def __init__(self, seed):
        self.g = torch.Generator().manual_seed(seed)

    def normal(self, shape, std):
        return torch.randn(shape, generator=self.g) * std

    def linear(self, out_f, in_f, gain=1.0):
        # std gain/sqrt(in) keeps activations O(1) at every depth.
        return self.normal((out_f, in_f), gain / in_f ** 0.5)

    def norm(self, n, noise=0.1):
        return 1.0 + self.normal((n,), noise)


def make_weights(spec, vocab, seed):
    r = Init(seed)
    C, H, I = spec["vision_hidden"], spec["hidden"], spec["intermediate"]
    nh, nkv, hd = spec["heads"], spec["kv_heads"], spec["hidden"] // spec["heads"]
    patch, img = spec["patch"], spec["vision_image_size"]
    grid = img // patch
    w = {}
    w["vision_model.embeddings.patch_embedding.weight"] = r.normal((C, 3, patch, patch), 1.5 / (3 * patch * patch) ** 0.5)
    w["vision_model.embeddings.patch_embedding.bias"] = r.normal((C,), 0.1)
    w["vision_model.embeddings.position_embedding"] = r.normal((1, grid * grid + 1, C), 0.5)
    w["vision_model.embeddings.class_embedding"] = r.normal((1, 1, C), 0.5)
    w["mlp1.0.weight"] = r.norm(4 * C)
    w["mlp1.0.bias"] = r.normal((4 * C,), 0.1)
    w["mlp1.1.weight"] = r.linear(H, 4 * C, 1.5)
    w["mlp1.1.bias"] = r.normal((H,), 0.1)
    w["mlp1.3.weight"] = r.linear(H, H, 1.5)
    w["mlp1.3.bias"] = r.normal((H,), 0.1)
    lm = "language_model.model."
    w[lm + "tok_embeddings.weight"] = r.normal((vocab, H), 1.0)
    for i in range(spec["layers"]):
        p = f"{lm}layers.{i}."
        w[p + "attention_norm.weight"] = r.norm(H)
        w[p + "ffn_norm.weight"] = r.norm(H)
        # Spec §6: rows are [kv groups][q slots + K + V][head_dim].
        w[p + "attention.wqkv.weight"] = r.linear((nh + 2 * nkv) * hd, H, 1.5)
        w[p + "attention.wo.weight"] = r.linear(H, nh * hd, 0.7)
        # Text and visual experts: independent draws with different gains, so they clearly differ.
        for name, gain in (("feed_forward", 1.0), ("feed_forward_ve", 1.6)):
            w[p + name + ".w1.weight"] = r.linear(I, H, gain)
            w[p + name + ".w3.weight"] = r.linear(I, H, gain)
            w[p + name + ".w2.weight"] = r.linear(H, I, 0.7)
    w[lm + "norm.weight"] = r.norm(H)
    w["language_model.output.weight"] = r.linear(vocab, H, 4.0)
    return w


# --- config and tokenizer files -------------------------------------------------------------

def make_config(spec, vocab):
    hd = spec["hidden"] // spec["heads"]
    return {
        "architectures": ["InternVLChatModel"],
        "downsample_ratio": 0.5,
        "dynamic_image_size": True,
        "force_image_size": spec["force_image_size"],
        "llm_config": {
            "architectures": ["InternLM2VEForCausalLM"],
            "attn_implementation": "eager",
            "bias": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
            "pad_token_id": 2,
            "hidden_act": "silu",
            "hidden_size": spec["hidden"],
            "initializer_range": 0.02,
            "intermediate_size": spec["intermediate"],
            "max_position_embeddings": spec["max_pos"],
            "model_type": "internlm2ve",
            "num_attention_heads": spec["heads"],
            "num_hidden_layers": spec["layers"],
            "num_key_value_heads": spec["kv_heads"],
            "rms_norm_eps": spec["rms_eps"],
            "rope_scaling": {"factor": 2.0, "type": "dynamic"},
            "rope_theta": spec["rope_theta"],
            "tie_word_embeddings": False,
            "torch_dtype": "bfloat16",
            "use_cache": True,
            "vocab_size": vocab,
        },
        "max_dynamic_patch": spec["max_patch"],
        "min_dynamic_patch": 1,
        "model_type": "internvl_chat",
        "ps_version": spec["ps"],
        "select_layer": -1,
        "template": "internlm2-chat",
        "torch_dtype": "bfloat16",
        "use_backbone_lora": 0,
        "use_llm_lora": 0,
        "use_thumbnail": True,
        "vision_config": {
            "architectures": ["InternVisionPatchModel"],
            "hidden_size": spec["vision_hidden"],
            "image_size": spec["vision_image_size"],
            "model_type": "intern_vit_patch",
            "num_channels": 3,
            "patch_size": spec["patch"],
            "torch_dtype": "bfloat16",
        },
    }


def token_entry(content):
    return {"content": content, "lstrip": False, "normalized": False, "rstrip": False,
            "single_word": False, "special": True}


def write_tokenizer_files(d, sp_bytes):
    sp = spm.SentencePieceProcessor(model_proto=sp_bytes)
    n = sp.get_piece_size()
    with open(os.path.join(d, "tokenizer.model"), "wb") as f:
        f.write(sp_bytes)
    added = {t: n + k for k, t in enumerate(ADDED_TOKENS)}
    dump(os.path.join(d, "added_tokens.json"), added)
    decoder = {}
    for t in ["<unk>", "<s>", "</s>"] + USER_SYMBOLS:
        decoder[str(sp.piece_to_id(t))] = token_entry(t)
    for t, i in added.items():
        decoder[str(i)] = token_entry(t)
    dump(os.path.join(d, "tokenizer_config.json"), {
        "added_tokens_decoder": decoder,
        "additional_special_tokens": USER_SYMBOLS + ADDED_TOKENS,
        "bos_token": "<s>",
        "clean_up_tokenization_spaces": False,
        "eos_token": "</s>",
        "model_max_length": 1000000000000000019884624838656,
        "pad_token": "</s>",
        "tokenizer_class": "InternLM2Tokenizer",
        "unk_token": "<unk>",
    })
    dump(os.path.join(d, "special_tokens_map.json"), {
        "additional_special_tokens": USER_SYMBOLS + ADDED_TOKENS,
        "bos_token": "<s>", "eos_token": "</s>", "pad_token": "</s>", "unk_token": "<unk>",
    })
    dump(os.path.join(d, "generation_config.json"), {
        "bos_token_id": 1, "eos_token_id": [2, sp.piece_to_id("<|im_end|>")], "pad_token_id": 2,
    })
    return n + len(ADDED_TOKENS)


def dump(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=2)
        f.write("\n")


MODELS = {
    "tiny-v2": dict(dtype="BF16", shards=1, seed=1001, force_image_size=448, vision_image_size=448, patch=14,
                    vision_hidden=32, hidden=64, intermediate=128, layers=2, heads=4, kv_heads=2,
                    rope_theta=1000000.0, max_pos=32768, rms_eps=1e-5, ps="v2", max_patch=6),
    "tiny-v1-sharded": dict(dtype="F32", shards=2, seed=2002, force_image_size=224, vision_image_size=448, patch=14,
                            vision_hidden=16, hidden=96, intermediate=160, layers=3, heads=6, kv_heads=2,
                            rope_theta=10000.0, max_pos=256, rms_eps=1e-6, ps="v1", max_patch=4),
    "demo": dict(dtype="BF16", shards=1, seed=3003, force_image_size=448, vision_image_size=448, patch=14,
                 vision_hidden=64, hidden=128, intermediate=256, layers=4, heads=4, kv_heads=2,
                 rope_theta=1000000.0, max_pos=32768, rms_eps=1e-5, ps="v2", max_patch=6),
}


def write_model(d, name, sp_bytes):
    spec = MODELS[name]
    if os.path.isdir(d):
        shutil.rmtree(d)
    os.makedirs(d)
    vocab = write_tokenizer_files(d, sp_bytes)
    dump(os.path.join(d, "config.json"), make_config(spec, vocab))
    w = make_weights(spec, vocab, spec["seed"])
    if spec["shards"] == 1:
        write_safetensors(os.path.join(d, "model.safetensors"), w, spec["dtype"])
    else:
        # Vision, connector, embeddings and the first layer in shard 1; the rest in shard 2.
        names = sorted(w)
        first = [k for k in names if not k.startswith("language_model.model.layers.")
                 or k.startswith("language_model.model.layers.0.")]
        first = [k for k in first if k != "language_model.output.weight"]
        parts = [first, [k for k in names if k not in first]]
        total, weight_map = 0, {}
        for s, keys in enumerate(parts):
            fname = f"model-{s + 1:05d}-of-{len(parts):05d}.safetensors"
            total += write_safetensors(os.path.join(d, fname), {k: w[k] for k in keys}, spec["dtype"])
            for k in keys:
                weight_map[k] = fname
        dump(os.path.join(d, "model.safetensors.index.json"),
             {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))})
    size = sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))
    print(f"{name}: {d} ({size} bytes, vocab {vocab})", file=sys.stderr)


def main():
    root = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", nargs="*", default=list(MODELS))
    args = ap.parse_args()
    torch.set_num_threads(1)
    sp_bytes = train_tokenizer()
    for name in args.models:
        if name == "demo":
            d = os.path.join(root, "flink-job/src/main/resources/io/monostream/demo/model")
        else:
            d = os.path.join(root, "model-operator/src/test/resources/models", name)
        write_model(d, name, sp_bytes)


if __name__ == "__main__":
    main()
