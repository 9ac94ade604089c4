#!/usr/bin/python3
"""Independent Mono-InternVL reference, written from /work/shared/docs/mono-internvl-spec.md.

Plain PyTorch fp32, no transformers: its own safetensors reader, Python SentencePiece, PIL.
Prints one JSON object with the fields of the Java `inspect` command, so anyone can diff
the Java engine against it:

  /usr/bin/python3 tools/reference/reference.py --model DIR [--image FILE] --question TEXT \
      [--max-new-tokens N] [--max-tiles N]

`--self-check` runs the spec §10 invariants against the model instead.
"""
import argparse
import json
import math
import os
import re
import sys

import numpy as np
import torch
import torch.nn.functional as F
import sentencepiece as spm
from PIL import Image

SYSTEM_MESSAGE = ("你是由上海人工智能实验室联合商汤科技开发的书生多模态大模型，英文名叫InternVL, "
                  "是一个有用无害的人工智能助手。")
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


# --- checkpoint (spec §2) -------------------------------------------------------------------

def read_safetensors(path):
    """Returns name -> fp32 tensor. Layout: u64-LE N, N bytes of JSON, raw LE data."""
    with open(path, "rb") as f:
        raw = f.read()
    n = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    data = raw[8 + n:]
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        buf = data[a:b]
        shape = meta["shape"]
        if meta["dtype"] == "BF16":
            bits = np.frombuffer(buf, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        elif meta["dtype"] == "F16":
            arr = np.frombuffer(buf, dtype="<f2").astype(np.float32)
        elif meta["dtype"] == "F32":
            arr = np.frombuffer(buf, dtype="<f4").astype(np.float32)
        else:
            raise ValueError(f"{path}: unsupported dtype {meta['dtype']} for {name}")
        out[name] = torch.from_numpy(arr.reshape(shape).copy())
    return out


def load_weights(model_dir):
    index = os.path.join(model_dir, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    w = {}
    for fname in files:
        w.update(read_safetensors(os.path.join(model_dir, fname)))
    return w


def expected_shapes(cfg):
    """Spec §2 tensor names and shapes."""
    vc, lc = cfg["vision_config"], cfg["llm_config"]
    C, P = vc["hidden_size"], vc["patch_size"]
    G = vc["image_size"] // P
    H, I, V = lc["hidden_size"], lc["intermediate_size"], lc["vocab_size"]
    nh, nkv = lc["num_attention_heads"], lc["num_key_value_heads"]
    hd = H // nh
    s = {
        "vision_model.embeddings.patch_embedding.weight": [C, 3, P, P],
        "vision_model.embeddings.patch_embedding.bias": [C],
        "vision_model.embeddings.position_embedding": [1, G * G + 1, C],
        "vision_model.embeddings.class_embedding": [1, 1, C],
        "mlp1.0.weight": [4 * C], "mlp1.0.bias": [4 * C],
        "mlp1.1.weight": [H, 4 * C], "mlp1.1.bias": [H],
        "mlp1.3.weight": [H, H], "mlp1.3.bias": [H],
        "language_model.model.tok_embeddings.weight": [V, H],
        "language_model.model.norm.weight": [H],
        "language_model.output.weight": [V, H],
    }
    for i in range(lc["num_hidden_layers"]):
        p = f"language_model.model.layers.{i}."
        s[p + "attention_norm.weight"] = [H]
        s[p + "ffn_norm.weight"] = [H]
        s[p + "attention.wqkv.weight"] = [(nh + 2 * nkv) * hd, H]
        s[p + "attention.wo.weight"] = [H, nh * hd]
        for e in ("feed_forward", "feed_forward_ve"):
            s[p + e + ".w1.weight"] = [I, H]
            s[p + e + ".w3.weight"] = [I, H]
            s[p + e + ".w2.weight"] = [H, I]
    return s


# --- tokenizer (spec §5) --------------------------------------------------------------------

class Tokenizer:
    def __init__(self, model_dir):
        self.sp = spm.SentencePieceProcessor(model_file=os.path.join(model_dir, "tokenizer.model"))
        self.specials = {}
        for t in ("<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"):
            i = self.sp.piece_to_id(t)
            if self.sp.id_to_piece(i) == t:
                self.specials[t] = i
        with open(os.path.join(model_dir, "added_tokens.json"), encoding="utf-8") as f:
            self.specials.update(json.load(f))
        with open(os.path.join(model_dir, "tokenizer_config.json"), encoding="utf-8") as f:
            for i, e in json.load(f).get("added_tokens_decoder", {}).items():
                self.specials[e["content"]] = int(i)
        self.special_ids = set(self.specials.values())
        alternatives = sorted(self.specials, key=len, reverse=True)
        self.split_re = re.compile("(" + "|".join(re.escape(t) for t in alternatives) + ")")

    def id(self, token):
        return self.specials[token]

    def encode(self, text):
        """BOS, then specials matched first and every text segment encoded on its own."""
        ids = [self.specials["<s>"]]
        for part in self.split_re.split(text):
            if not part:
                continue
            if part in self.specials:
                ids.append(self.specials[part])
            else:
                ids.extend(self.sp.encode(part))
        return ids

    def decode(self, ids):
        """Specials skipped, byte-fallback pieces joined by SentencePiece, cut at <|im_end|>, stripped."""
        kept = [i for i in ids if i not in self.special_ids]
        text = self.sp.decode(kept)
        return text.split("<|im_end|>")[0].strip()


# --- image preprocessing (spec §3) ----------------------------------------------------------

def choose_grid(w, h, size, min_num, max_num):
    ar = w / h
    ratios = sorted({(i, j) for n in range(min_num, max_num + 1)
                     for i in range(1, n + 1) for j in range(1, n + 1)
                     if min_num <= i * j <= max_num}, key=lambda r: r[0] * r[1])
    best_diff, best = float("inf"), (1, 1)
    for i, j in ratios:
        d = abs(ar - i / j)
        if d < best_diff:
            best_diff, best = d, (i, j)
        elif d == best_diff and w * h > 0.5 * size * size * i * j:
            best = (i, j)
    return best


def preprocess(path, size, min_num, max_num, use_thumbnail):
    """Returns (tiles [T,3,S,S] fp32, grid (cols, rows))."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    i, j = choose_grid(w, h, size, min_num, max_num)
    resized = img.resize((size * i, size * j), Image.BICUBIC)
    tiles = []
    for k in range(i * j):
        x, y = (k % i) * size, (k // i) * size
        tiles.append(resized.crop((x, y, x + size, y + size)))
    if use_thumbnail and i * j > 1:
        tiles.append(img.resize((size, size), Image.BICUBIC))
    mean = torch.tensor(MEAN, dtype=torch.float32).view(3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32).view(3, 1, 1)
    out = []
    for t in tiles:
        a = torch.from_numpy(np.asarray(t, dtype=np.uint8).copy()).permute(2, 0, 1).float().div(255)
        out.append((a - mean) / std)
    return torch.stack(out), (i, j)


# --- model ----------------------------------------------------------------------------------

class Model:
    def __init__(self, model_dir, weights=None):
        with open(os.path.join(model_dir, "config.json")) as f:
            self.cfg = json.load(f)
        cfg = self.cfg
        if cfg["llm_config"]["architectures"][0] != "InternLM2VEForCausalLM":
            raise ValueError("not a Mono-InternVL v1 checkpoint")
        assert cfg.get("select_layer", -1) == -1
        self.w = load_weights(model_dir) if weights is None else weights
        shapes = expected_shapes(cfg)
        missing = [k for k in shapes if k not in self.w]
        assert not missing, f"missing tensors: {missing}"
        for k, s in shapes.items():
            assert list(self.w[k].shape) == s, f"{k}: shape {list(self.w[k].shape)} != {s}"
        extra = [k for k in self.w if k not in shapes]
        assert not extra, f"unexpected tensors: {extra}"
        vc, lc = cfg["vision_config"], cfg["llm_config"]
        self.patch = vc["patch_size"]
        self.table_grid = vc["image_size"] // self.patch
        self.size = cfg.get("force_image_size") or vc["image_size"]
        self.grid = self.size // self.patch
        assert cfg["downsample_ratio"] == 0.5
        self.tokens_per_tile = (self.grid // 2) ** 2
        self.ps = cfg.get("ps_version", "v1")
        self.H = lc["hidden_size"]
        self.nh = lc["num_attention_heads"]
        self.nkv = lc["num_key_value_heads"]
        self.hd = self.H // self.nh
        self.layers = lc["num_hidden_layers"]
        self.eps = lc["rms_norm_eps"]
        self.theta = lc["rope_theta"]
        self.max_pos = lc["max_position_embeddings"]
        rs = lc.get("rope_scaling") or {}
        self.rope_type = rs.get("type")
        self.rope_factor = rs.get("factor", 1.0)
        assert self.rope_type in (None, "dynamic"), "only dynamic NTK is implemented"

    # spec §4
    def vision(self, tiles):
        w = self.w
        x = F.conv2d(tiles, w["vision_model.embeddings.patch_embedding.weight"],
                     w["vision_model.embeddings.patch_embedding.bias"], stride=self.patch)
        T, C, g, _ = x.shape
        x = x.flatten(2).transpose(1, 2)                      # [T, g*g, C], p = g*y + x
        cls = w["vision_model.embeddings.class_embedding"].expand(T, 1, C)
        x = torch.cat([cls, x], dim=1)
        pos = w["vision_model.embeddings.position_embedding"]
        patch_pos = pos[:, 1:]
        if g != self.table_grid:
            G = self.table_grid
            t = patch_pos.reshape(1, G, G, C).permute(0, 3, 1, 2)
            t = F.interpolate(t, size=(g, g), mode="bicubic", align_corners=False)
            patch_pos = t.permute(0, 2, 3, 1).reshape(1, g * g, C)
        x = x + torch.cat([pos[:, :1], patch_pos], dim=1)
        x = x[:, 1:]                                          # drop CLS
        x = pixel_shuffle(x.reshape(T, g, g, C), self.ps)
        x = F.layer_norm(x, (4 * C,), w["mlp1.0.weight"], w["mlp1.0.bias"], eps=1e-5)
        x = F.gelu(F.linear(x, w["mlp1.1.weight"], w["mlp1.1.bias"]))
        x = F.linear(x, w["mlp1.3.weight"], w["mlp1.3.bias"])
        return x.reshape(-1, self.H)

    def rms(self, x, weight):
        return weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))

    def rope(self, positions, total_len):
        """cos, sin [L, hd] for the new tokens; dynamic NTK base from the total length (spec §6)."""
        d = self.hd
        base = self.theta
        if self.rope_type == "dynamic" and total_len > self.max_pos:
            f = self.rope_factor
            base = self.theta * ((f * total_len / self.max_pos) - (f - 1)) ** (d / (d - 2))
        inv_freq = 1.0 / (base ** (torch.arange(0, d, 2).float() / d))
        freqs = torch.outer(positions.float(), inv_freq)
        emb = torch.cat([freqs, freqs], dim=-1)
        return emb.cos(), emb.sin()

    @staticmethod
    def apply_rope(x, cos, sin):
        half = x.shape[-1] // 2
        rot = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
        return x * cos + rot * sin

    def ffn(self, x, prefix):
        w = self.w
        return F.linear(F.silu(F.linear(x, w[prefix + ".w1.weight"])) * F.linear(x, w[prefix + ".w3.weight"]),
                        w[prefix + ".w2.weight"])

    def moe(self, f, m, p):
        """Reference MoE (spec §8): both experts on every token, masked sum."""
        mm = m.to(f.dtype).unsqueeze(-1)
        return self.ffn(f, p + "feed_forward") * (1 - mm) + self.ffn(f, p + "feed_forward_ve") * mm

    def forward(self, ids, cache, vis=None, img_ctx_id=None, trace=None):
        """ids [L] new tokens; cache: list of (k, v) per layer, extended in place. Returns logits [L, V]."""
        w = self.w
        ids = torch.as_tensor(ids)
        L = ids.shape[0]
        past = cache[0][0].shape[0] if cache and cache[0] is not None else 0
        m = (ids == img_ctx_id)
        h = w["language_model.model.tok_embeddings.weight"][ids].clone()
        if vis is not None:
            assert int(m.sum()) == vis.shape[0], "vision rows must equal popcount(m)"
            h[m] = vis
        positions = torch.arange(past, past + L)
        cos, sin = self.rope(positions, past + L)
        gq = self.nh // self.nkv
        for i in range(self.layers):
            p = f"language_model.model.layers.{i}."
            x = self.rms(h, w[p + "attention_norm.weight"])
            qkv = F.linear(x, w[p + "attention.wqkv.weight"])
            # Spec §6: rows are [kv group g][slot s][head_dim]; slots 0..gq-1 are query heads
            # g*gq+s, slot gq is K head g, slot gq+1 is V head g.
            qkv = qkv.view(L, self.nkv, gq + 2, self.hd)
            q = qkv[:, :, :gq].reshape(L, self.nh, self.hd)
            k = qkv[:, :, gq]
            v = qkv[:, :, gq + 1]
            q = self.apply_rope(q, cos.unsqueeze(1), sin.unsqueeze(1))
            k = self.apply_rope(k, cos.unsqueeze(1), sin.unsqueeze(1))
            if cache[i] is not None:
                k = torch.cat([cache[i][0], k], dim=0)
                v = torch.cat([cache[i][1], v], dim=0)
            cache[i] = (k, v)
            S = k.shape[0]
            kh = k.repeat_interleave(gq, dim=1)               # query head q uses KV head q // gq
            vh = v.repeat_interleave(gq, dim=1)
            scores = torch.einsum("qhd,khd->hqk", q, kh) / math.sqrt(self.hd)
            qpos = torch.arange(past, past + L).unsqueeze(1)
            kpos = torch.arange(S).unsqueeze(0)
            scores = scores.masked_fill((kpos > qpos).unsqueeze(0), float("-inf"))
            probs = torch.softmax(scores, dim=-1)
            attn = torch.einsum("hqk,khd->qhd", probs, vh).reshape(L, self.nh * self.hd)
            h = h + F.linear(attn, w[p + "attention.wo.weight"])
            f = self.rms(h, w[p + "ffn_norm.weight"])
            out = self.moe(f, m, p)
            if trace is not None:
                trace.append(out)
            h = h + out
        h = self.rms(h, w["language_model.model.norm.weight"])
        return F.linear(h, w["language_model.output.weight"])


def pixel_shuffle(P, ps):
    """P [T, g, g, C] indexed P[y][x] -> [T, (g/2)^2, 4C] (spec §4).

    Token packs concat(P[2Y][2X], P[2Y][2X+1], P[2Y+1][2X], P[2Y+1][2X+1]);
    v2 orders tokens t = (g/2)Y + X, v1 transposes the order (t = (g/2)X + Y)."""
    T, g, _, C = P.shape
    blocks = torch.cat([P[:, 0::2, 0::2], P[:, 0::2, 1::2], P[:, 1::2, 0::2], P[:, 1::2, 1::2]], dim=-1)
    if ps == "v1":
        blocks = blocks.transpose(1, 2)                       # [T, X, Y, 4C]
    elif ps != "v2":
        raise ValueError(f"ps_version {ps}")
    return blocks.reshape(T, (g // 2) ** 2, 4 * C)


# --- prompt and generation ------------------------------------------------------------------

def build_prompt(question, image_tokens):
    """Spec §5: internlm2-chat MPT template, no "\n" after <|im_end|>."""
    user = question
    if image_tokens:
        user = "<img>" + "<IMG_CONTEXT>" * image_tokens + "</img>\n" + question
    return (f"<|im_start|>system\n{SYSTEM_MESSAGE}<|im_end|>"
            f"<|im_start|>user\n{user}<|im_end|><|im_start|>assistant\n")


def run(model_dir, image, question, max_new_tokens=16, max_tiles=None, model=None, tok=None):
    model = model or Model(model_dir)
    tok = tok or Tokenizer(model_dir)
    cfg = model.cfg
    tiles, grid, vis = None, None, None
    T = 0
    if image:
        max_num = max_tiles if max_tiles is not None else cfg.get("max_dynamic_patch", 6)
        min_num = cfg.get("min_dynamic_patch", 1)
        if not cfg.get("dynamic_image_size", True):
            min_num = max_num = 1
        tiles, grid = preprocess(image, model.size, min_num, max_num, cfg.get("use_thumbnail", False))
        T = tiles.shape[0]
        vis = model.vision(tiles)
    ids = tok.encode(build_prompt(question, model.tokens_per_tile * T))
    img_ctx = tok.id("<IMG_CONTEXT>")
    check_prompt(ids, tok, model.tokens_per_tile * T)
    stops = {2, tok.id("<|im_start|>"), tok.id("<|im_end|>")}
    cache = [None] * model.layers
    with torch.no_grad():
        logits = model.forward(ids, cache, vis, img_ctx)[-1]
        first_logits = logits.clone()
        # As HF generate does, a stop token ends generation and is kept in generated_ids
        # (never in the text).
        generated, margins, stop_reason = [], [], "max_new_tokens"
        while len(generated) < max_new_tokens:
            top2 = torch.topk(logits, 2).values
            margins.append(float(top2[0] - top2[1]))
            nxt = int(torch.argmax(logits))
            generated.append(nxt)
            if nxt in stops:
                stop_reason = "stop_token"
                break
            if len(generated) == max_new_tokens:
                break
            logits = model.forward([nxt], cache, None, img_ctx)[-1]
    result = {
        "model": os.path.basename(os.path.normpath(model_dir)),
        "input_ids": ids,
        "image_tiles": T,
        "grid": list(grid) if grid else None,
        "generated_ids": generated,
        "text": tok.decode(generated),
        "stop_reason": stop_reason,
        "first_logits": [float(x) for x in first_logits],
    }
    return result, {"prompt_length": len(ids), "min_top2_margin": min(margins) if margins else None}


def check_prompt(ids, tok, image_tokens):
    """Spec §10 invariants 3 and 11 on the prompt ids."""
    s, e, ctx = tok.id("<|im_start|>"), tok.id("<|im_end|>"), tok.id("<IMG_CONTEXT>")
    assert ids[0] == tok.id("<s>")
    tail = tok.encode("<|im_start|>assistant\n")[1:]
    assert ids[-len(tail):] == tail, "prompt must end with <|im_start|>assistant\\n"
    for a, b in zip(ids, ids[1:]):
        if a == e:
            assert b == s, "no newline between <|im_end|> and <|im_start|>"
    assert ids.count(ctx) == image_tokens
    if image_tokens:
        i0, i1 = ids.index(tok.id("<img>")), ids.index(tok.id("</img>"))
        assert i1 - i0 + 1 == image_tokens + 2


# --- self-checks (spec §10) -----------------------------------------------------------------

def self_check(model_dir, image=None):
    model = Model(model_dir)
    tok = Tokenizer(model_dir)
    img_ctx = tok.id("<IMG_CONTEXT>")
    checks = []

    # 1, 2: tiling tables (S = 448).
    table12 = {(448, 448): (1, 1), (500, 500): (1, 1), (700, 700): (2, 2), (1000, 1000): (3, 3),
               (800, 600): (4, 3), (1920, 1080): (4, 2), (1080, 1920): (2, 4), (300, 1200): (1, 4),
               (4000, 100): (12, 1)}
    for (w_, h_), g in table12.items():
        assert choose_grid(w_, h_, 448, 1, 12) == g, (w_, h_)
    assert choose_grid(800, 600, 448, 1, 6) == (3, 2)
    assert choose_grid(1920, 1080, 448, 1, 6) == (2, 1)
    checks.append("tiling tables (invariants 1, 2)")

    # 4: pixel shuffle probe.
    P = torch.tensor([[[10.0 * y + x] for x in range(4)] for y in range(4)]).unsqueeze(0)  # [1,4,4,1]
    v2, v1 = pixel_shuffle(P, "v2"), pixel_shuffle(P, "v1")
    assert v2[0, 1].tolist() == [2.0, 3.0, 12.0, 13.0]
    assert v1[0, 1].tolist() == [20.0, 21.0, 30.0, 31.0]
    checks.append("pixel shuffle probe (invariant 4)")

    # 5: same-size table resize is an identity; CLS and pos[0] affect nothing.
    t = torch.randn(1, 8, 32, 32)
    assert torch.equal(F.interpolate(t, size=(32, 32), mode="bicubic", align_corners=False), t)
    tiles = torch.randn(2, 3, model.size, model.size)
    with torch.no_grad():
        base = model.vision(tiles)
        saved = (model.w["vision_model.embeddings.class_embedding"].clone(),
                 model.w["vision_model.embeddings.position_embedding"].clone())
        model.w["vision_model.embeddings.class_embedding"] += 5.0
        model.w["vision_model.embeddings.position_embedding"][:, 0] += 5.0
        assert torch.equal(model.vision(tiles), base)
        model.w["vision_model.embeddings.class_embedding"], model.w["vision_model.embeddings.position_embedding"] = saved
    checks.append("position table resize identity, CLS inert (invariant 5)")

    # 3, 11: prompt ids with and without an image.
    check_prompt(tok.encode(build_prompt("Describe.", 0)), tok, 0)
    n = model.tokens_per_tile * 3
    ids = tok.encode(build_prompt("Describe.", n))
    check_prompt(ids, tok, n)
    checks.append("prompt ids (invariants 3, 11)")

    # 6: MHA rewrite of wqkv leaves the logits unchanged.
    gen = torch.Generator().manual_seed(7)
    text_ids = tok.encode(build_prompt("What is written on the sign?", 0))
    mixed = tok.encode(build_prompt("Read the text.", model.tokens_per_tile))
    vis = torch.randn(model.tokens_per_tile, model.H, generator=gen)
    with torch.no_grad():
        ref = model.forward(mixed, [None] * model.layers, vis, img_ctx)
        mha = mha_rewrite(model, model_dir)
        got = mha.forward(mixed, [None] * mha.layers, vis, img_ctx)
    assert torch.allclose(ref, got, atol=1e-5, rtol=1e-5), float((ref - got).abs().max())
    checks.append(f"MHA rewrite of wqkv (invariant 6), max |diff| {float((ref - got).abs().max()):.2e}")

    # 7: RoPE identity at 0, relative-position property.
    q, k = torch.randn(model.hd, generator=gen), torch.randn(model.hd, generator=gen)
    cos, sin = model.rope(torch.arange(0, 40), 40)
    assert torch.equal(Model.apply_rope(q, cos[0], sin[0]), q)
    dots = [float(Model.apply_rope(q, cos[a], sin[a]) @ Model.apply_rope(k, cos[b], sin[b]))
            for a, b in ((5, 2), (13, 10), (39, 36))]
    assert max(dots) - min(dots) < 1e-4 * max(1.0, abs(dots[0])), dots
    checks.append("RoPE identity at 0 and relative position (invariant 7)")

    # 8: perturbing feed_forward_ve leaves text-only logits bit-identical; perturbing
    # feed_forward leaves layer-0 FFN outputs at image rows unchanged.
    with torch.no_grad():
        base = model.forward(text_ids, [None] * model.layers, None, img_ctx)
        tr0 = []
        model.forward(mixed, [None] * model.layers, vis, img_ctx, trace=tr0)
        saved = {k_: v_.clone() for k_, v_ in model.w.items() if ".feed_forward" in k_}
        for k_ in saved:
            if ".feed_forward_ve." in k_:
                model.w[k_] += 0.5 * torch.randn(model.w[k_].shape, generator=gen)
        assert torch.equal(model.forward(text_ids, [None] * model.layers, None, img_ctx), base)
        model.w.update({k_: v_.clone() for k_, v_ in saved.items()})
        for k_ in saved:
            if ".feed_forward." in k_:
                model.w[k_] += 0.5 * torch.randn(model.w[k_].shape, generator=gen)
        tr1 = []
        model.forward(mixed, [None] * model.layers, vis, img_ctx, trace=tr1)
        mrow = torch.tensor(mixed) == img_ctx
        assert torch.equal(tr0[0][mrow], tr1[0][mrow])
        assert not torch.equal(tr0[0][~mrow], tr1[0][~mrow])
        model.w.update(saved)
    checks.append("expert isolation (invariant 8)")

    # Masked-sum MoE equals per-token selection (spec §8) for several masks.
    f = torch.randn(9, model.H, generator=gen)
    p = "language_model.model.layers.0."
    masks = {"all-text": [0] * 9, "all-image": [1] * 9, "alternating": [k_ % 2 for k_ in range(9)],
             "runs": [0, 0, 1, 1, 1, 0, 1, 1, 0]}
    with torch.no_grad():
        for name, mk in masks.items():
            m = torch.tensor(mk, dtype=torch.bool)
            masked = model.moe(f, m, p)
            sel = torch.stack([model.ffn(f[t:t + 1], p + ("feed_forward_ve" if mk[t] else "feed_forward"))[0]
                               for t in range(9)])
            assert torch.allclose(masked, sel, atol=1e-6, rtol=0), name
        for mk in ([0], [1]):
            m = torch.tensor(mk, dtype=torch.bool)
            sel = model.ffn(f[:1], p + ("feed_forward_ve" if mk[0] else "feed_forward"))
            assert torch.equal(model.moe(f[:1], m, p), sel)
    checks.append("masked-sum MoE equals per-token selection")

    # KV-cache decode equals a full recompute of the same sequence.
    with torch.no_grad():
        cache = [None] * model.layers
        model.forward(text_ids[:-3], cache, None, img_ctx)
        step = [model.forward([t_], cache, None, img_ctx)[-1] for t_ in text_ids[-3:]]
        full = model.forward(text_ids, [None] * model.layers, None, img_ctx)[-3:]
    assert torch.allclose(torch.stack(step), full, atol=1e-4, rtol=1e-4)
    checks.append("KV-cache decode equals full recompute")
    return checks


def mha_rewrite(model, model_dir):
    """Copies KV head g to every query head of its group: num_key_value_heads = num_attention_heads."""
    gq, hd = model.nh // model.nkv, model.hd
    w = dict(model.w)
    for i in range(model.layers):
        key = f"language_model.model.layers.{i}.attention.wqkv.weight"
        rows = w[key].view(model.nkv, gq + 2, hd, model.H)
        new = []
        for g in range(model.nkv):
            for s in range(gq):
                new.append(torch.stack([rows[g, s], rows[g, gq], rows[g, gq + 1]]))
        w[key] = torch.stack(new).reshape(3 * model.nh * hd, model.H)
    mha = Model.__new__(Model)
    mha.__dict__.update(model.__dict__)
    mha.w = w
    mha.nkv = model.nh
    return mha


def main():
    ap = argparse.ArgumentParser(description="Mono-InternVL reference (spec-derived, PyTorch fp32)")
    ap.add_argument("--model", required=True)
    ap.add_argument("--image")
    ap.add_argument("--question")
    ap.add_argument("--max-new-tokens", type=int, default=16)
    ap.add_argument("--max-tiles", type=int)
    ap.add_argument("--golden", help="write a golden JSON (result + inputs) to this path")
    ap.add_argument("--min-prompt-length", type=int, default=0,
                    help="fail unless the prompt is longer than this (e.g. to prove NTK is active)")
    ap.add_argument("--self-check", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.self_check:
        for c in self_check(args.model):
            print("ok:", c, file=sys.stderr)
        return
    if args.question is None:
        ap.error("--question is required")
    result, info = run(args.model, args.image, args.question, args.max_new_tokens, args.max_tiles)
    assert info["prompt_length"] > args.min_prompt_length, \
        f"prompt length {info['prompt_length']} <= {args.min_prompt_length}"
    print(f"prompt length {info['prompt_length']}, min top-2 margin {info['min_top2_margin']:.4g}",
          file=sys.stderr)
    if args.golden:
        golden = {"image": os.path.basename(args.image) if args.image else None,
                  "question": args.question, "max_new_tokens": args.max_new_tokens,
                  "max_tiles": args.max_tiles, "min_top2_margin": info["min_top2_margin"]}
        golden.update(result)
        with open(args.golden, "w", encoding="utf-8") as f:
            json.dump(golden, f, ensure_ascii=False)
            f.write("\n")
    else:
        print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
