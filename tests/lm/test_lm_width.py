"""Decoder width pruning (Minitron-style): KV groups, FFN units and hidden channels of a tiny Llama / Qwen2 LM,
checked against exact references (a cut of units zeroed beforehand changes nothing), hand-computed importance
scores, and a save/load round trip."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import pytest
import torch
from support.tiny_lm import LM_SHAPE, make_tiny_lm

from edgedistill.distill.width import keep_top
from edgedistill.errors import ConfigError, InputError
from edgedistill.lm.width import prune_decoder_width
from edgedistill.lm.width_scores import DecoderScores, decoder_activation_scores, decoder_weight_scores

D = LM_SHAPE["hidden"] // LM_SHAPE["heads"]  # head size 8
PER_GROUP = LM_SHAPE["heads"] // LM_SHAPE["kv_heads"]  # 2 query heads share each KV head
TEXTS = ["What is the capital of France? Paris.", "def f(x):\n    return x + 1\n", "Hello, world!",
         "the quick brown fox jumps over the lazy dog and runs away"]


@pytest.fixture(scope="module", params=["llama", "qwen2"])
def lm_folder(request, tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / request.param, family=request.param)


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory) -> Path:
    return make_tiny_lm(tmp_path_factory.mktemp("lm") / "llama")


def load(folder: Path, **kwargs):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, **kwargs).eval()


def tokens(folder: Path) -> dict[str, torch.Tensor]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    return dict(tokenizer(TEXTS[:2], padding=True, padding_side="right", return_tensors="pt"))


def logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    with torch.no_grad():
        return model(**batch).logits * batch["attention_mask"].unsqueeze(-1)  # padding positions are not compared


def zero_rows(linear, rows: list[int]) -> None:
    linear.weight[rows] = 0
    if linear.bias is not None:
        linear.bias[rows] = 0


def zero_group(attn, group: int) -> None:
    """Every weight of KV group ``group``: its query heads' Q rows and o_proj columns, its K and V rows."""
    q_rows = list(range(group * PER_GROUP * D, (group + 1) * PER_GROUP * D))
    zero_rows(attn.q_proj, q_rows)
    for proj in (attn.k_proj, attn.v_proj):
        zero_rows(proj, list(range(group * D, (group + 1) * D)))
    attn.o_proj.weight[:, q_rows] = 0


def zero_channels(model, channels: list[int]) -> None:
    """Every weight that reads or writes residual channels ``channels`` (the tied LM head with the embedding)."""
    model.model.embed_tokens.weight[:, channels] = 0
    model.lm_head.weight[:, channels] = 0
    for layer in model.model.layers:
        for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj, layer.mlp.gate_proj,
                     layer.mlp.up_proj):
            proj.weight[:, channels] = 0
        for proj in (layer.self_attn.o_proj, layer.mlp.down_proj):
            proj.weight[channels] = 0
        layer.input_layernorm.weight[channels] = 0
        layer.post_attention_layernorm.weight[channels] = 0
    model.model.norm.weight[channels] = 0


def test_keeping_everything_is_identity(lm_folder):
    model = load(lm_folder)
    batch = tokens(lm_folder)
    for sizes in ((None, None, None), (LM_SHAPE["kv_heads"], LM_SHAPE["intermediate"], LM_SHAPE["hidden"])):
        student = prune_decoder_width(model, *sizes)
        assert student is not model
        assert torch.equal(logits(student, batch), logits(model, batch))
        assert student.config.num_key_value_heads == 2 and student.config.hidden_size == 32


def test_cutting_zeroed_units_is_exact(lm_folder):
    """Groups, FFN units and hidden channels whose weights are all zero rank last by weight magnitude, and
    removing them leaves the logits as they were (the RMSNorm rescaling makes the hidden cut exact)."""
    model = load(lm_folder)
    batch = tokens(lm_folder)
    dropped_units = {0: [1, 5, 9], 1: [0, 2, 4], 2: [60, 61, 62], 3: [10, 20, 30]}
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            zero_group(layer.self_attn, i % 2)  # each layer its own group
            zero_rows(layer.mlp.gate_proj, dropped_units[i])
            zero_rows(layer.mlp.up_proj, dropped_units[i])
            layer.mlp.down_proj.weight[:, dropped_units[i]] = 0
        zero_channels(model, [3, 11, 12, 30])
    before = {k: v.clone() for k, v in model.state_dict().items()}
    student = prune_decoder_width(model, 1, 61, 28)
    torch.testing.assert_close(logits(student, batch), logits(model, batch), rtol=1e-5, atol=1e-6)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the teacher is untouched
    kept = [c for c in range(32) if c not in (3, 11, 12, 30)]
    q_kept = list(range(PER_GROUP * D, 2 * PER_GROUP * D))  # layer 0 keeps group 1: query heads 2, 3
    torch.testing.assert_close(student.model.layers[0].self_attn.q_proj.weight,
                               model.model.layers[0].self_attn.q_proj.weight[q_kept][:, kept], rtol=0, atol=0)
    torch.testing.assert_close(student.model.norm.weight, model.model.norm.weight[kept] * math.sqrt(32 / 28))


def test_gqa_shapes_and_config(llama_folder, tmp_path):
    student = prune_decoder_width(load(llama_folder), kv_groups=1, intermediate_size=40, hidden_size=20)
    config = student.config
    assert (config.num_key_value_heads, config.num_attention_heads, config.head_dim) == (1, 2, 8)
    assert (config.intermediate_size, config.hidden_size) == (40, 20)  # 20 is no multiple of 2 heads × 8
    layer = student.model.layers[2]
    shapes = {name: tuple(p.shape) for name, p in layer.named_parameters()}
    assert shapes == {"self_attn.q_proj.weight": (16, 20), "self_attn.k_proj.weight": (8, 20),
                      "self_attn.v_proj.weight": (8, 20), "self_attn.o_proj.weight": (20, 16),
                      "mlp.gate_proj.weight": (40, 20), "mlp.up_proj.weight": (40, 20),
                      "mlp.down_proj.weight": (20, 40), "input_layernorm.weight": (20,),
                      "post_attention_layernorm.weight": (20,)}
    assert tuple(student.model.embed_tokens.weight.shape) == (config.vocab_size, 20)
    out = student.generate(**tokens(llama_folder), max_new_tokens=3, do_sample=False)
    assert out.shape[1] == tokens(llama_folder)["input_ids"].shape[1] + 3
    student.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["head_dim"], saved["num_key_value_heads"], saved["num_attention_heads"]) == (8, 1, 2)


def test_tied_embeddings_survive_save_and_load(lm_folder, tmp_path):
    student = prune_decoder_width(load(lm_folder), 1, 48, 24)
    assert student.lm_head.weight is student.model.embed_tokens.weight
    student.save_pretrained(tmp_path)
    loaded = load(tmp_path)
    assert loaded.lm_head.weight is loaded.model.embed_tokens.weight
    assert type(loaded) is type(student)
    batch = tokens(lm_folder)
    assert torch.equal(logits(loaded, batch), logits(student.eval(), batch))


def test_untied_head_is_sliced_on_its_own(llama_folder):
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(llama_folder)
    config.tie_word_embeddings = False
    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_config(config).eval()
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    keep = torch.tensor([0, 2, 5, 7, 8, 13, 21, 31])
    hidden = torch.zeros(32)
    hidden[keep] = 1.0
    scores = decoder_weight_scores(model)
    student = prune_decoder_width(model, None, None, 8, DecoderScores(scores.groups, scores.units, hidden))
    assert student.lm_head.weight is not student.model.embed_tokens.weight
    torch.testing.assert_close(student.lm_head.weight, model.lm_head.weight[:, keep], rtol=0, atol=0)
    torch.testing.assert_close(student.model.embed_tokens.weight, model.model.embed_tokens.weight[:, keep])


def test_activation_scores_pick_the_largest_activations(llama_folder):
    """A group whose values are 30× larger wins, as do units whose up rows are, and (in another copy, since it
    changes every MLP's input) channels whose RMSNorm gains are."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(llama_folder)
    model, boosted_norms = load(llama_folder), load(llama_folder)
    with torch.no_grad():
        for i, layer in enumerate(model.model.layers):
            group = (i + 1) % 2  # layer 0: group 1, layer 1: group 0, ...
            layer.self_attn.v_proj.weight[group * D : (group + 1) * D] *= 30
            layer.mlp.up_proj.weight[[3, 10, 20]] *= 30
        for norm in residual_norms(boosted_norms):
            norm.weight[[5, 17]] *= 30
    scores = decoder_activation_scores(model, tokenizer, TEXTS, 64)
    assert [keep_top(g, 1).tolist() for g in scores.groups] == [[1], [0], [1], [0]]
    assert all(keep_top(u, 3).tolist() == [3, 10, 20] for u in scores.units)
    assert keep_top(decoder_activation_scores(boosted_norms, tokenizer, TEXTS, 64).hidden, 2).tolist() == [5, 17]
    student = prune_decoder_width(model, 1, 3, None, scores)
    torch.testing.assert_close(student.model.layers[0].self_attn.k_proj.weight,
                               model.model.layers[0].self_attn.k_proj.weight[D : 2 * D], rtol=0, atol=0)
    torch.testing.assert_close(student.model.layers[1].mlp.down_proj.weight,
                               model.model.layers[1].mlp.down_proj.weight[:, [3, 10, 20]], rtol=0, atol=0)


def minitron(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference aggregation: mean over each text's real tokens, L2 over texts. (B, S, C) → (C,)."""
    per_text = [values[b, mask[b].bool()].mean(0) for b in range(values.shape[0])]
    return torch.stack(per_text).norm(dim=0)


def residual_norms(model) -> list:
    return [*(n for layer in model.model.layers for n in (layer.input_layernorm, layer.post_attention_layernorm)),
            model.model.norm]


def test_activation_scores_match_hand_computed_reference(llama_folder):
    """Heads from eager attention weights × V; FFN units and RMSNorm outputs recomputed from each module's input;
    all aggregated by :func:`minitron` over two texts of different lengths (right padding excluded)."""
    from transformers import AutoTokenizer

    model = load(llama_folder, attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(llama_folder)
    batch = dict(tokenizer(TEXTS[:2], padding=True, padding_side="right", return_tensors="pt"))
    mask = batch["attention_mask"]
    assert mask.sum(1).tolist()[0] != mask.sum(1).tolist()[1]
    layer = model.model.layers[1]
    watched = [layer.mlp, *residual_norms(model)]
    inputs: dict[int, torch.Tensor] = {}
    handles = [m.register_forward_pre_hook(lambda _m, args, i=i: inputs.__setitem__(i, args[0]))
               for i, m in enumerate(watched)]
    with torch.no_grad():
        out = model(**batch, output_attentions=True, output_hidden_states=True)
        for h in handles:
            h.remove()
        scores = decoder_activation_scores(model, tokenizer, TEXTS[:2], 64, batch_size=2)
        gated = torch.nn.functional.silu(layer.mlp.gate_proj(inputs[0])) * layer.mlp.up_proj(inputs[0])  # (B, S, 64)
        torch.testing.assert_close(scores.units[1], minitron(gated.abs(), mask))
        v = layer.self_attn.v_proj(layer.input_layernorm(out.hidden_states[1]))  # (B, S, kv_heads · D)
        v = v.view(*v.shape[:2], 2, D).repeat_interleave(PER_GROUP, dim=2)  # (B, S, heads, D), repeat_kv's order
        context = torch.einsum("bhst,bthd->bshd", out.attentions[1], v)  # each head's attention output
        heads = minitron(context.norm(dim=-1), mask)  # (heads,)
        torch.testing.assert_close(scores.groups[1], heads.view(2, PER_GROUP).norm(dim=1))
        eps = model.config.rms_norm_eps
        hidden = sum(minitron((n.weight * x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()).abs(), mask)
                     for n, x in ((n, inputs[i + 1]) for i, n in enumerate(watched[1:])))
        torch.testing.assert_close(scores.hidden, hidden)


def test_weight_scores_by_hand(llama_folder):
    model = load(llama_folder)
    attn = model.model.layers[0].self_attn
    scores = decoder_weight_scores(model)
    q = attn.q_proj.weight[2 * D : 4 * D].pow(2).sum() + attn.o_proj.weight[:, 2 * D : 4 * D].pow(2).sum()
    kv = attn.k_proj.weight[D : 2 * D].pow(2).sum() + attn.v_proj.weight[D : 2 * D].pow(2).sum()
    torch.testing.assert_close(scores.groups[0][1], (q + kv).sqrt().detach())
    mlp = model.model.layers[3].mlp
    unit = sum(w.pow(2).sum() for w in (mlp.gate_proj.weight[7], mlp.up_proj.weight[7], mlp.down_proj.weight[:, 7]))
    torch.testing.assert_close(scores.units[3][7], unit.sqrt().detach())
    readers = [model.model.embed_tokens.weight[:, 4]]  # tied: the LM head is the same table
    for layer in model.model.layers:
        readers += [p.weight[:, 4] for p in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj,
                                              layer.mlp.gate_proj, layer.mlp.up_proj)]
        readers += [p.weight[4] for p in (layer.self_attn.o_proj, layer.mlp.down_proj)]
        readers += [n.weight[4:5] for n in (layer.input_layernorm, layer.post_attention_layernorm)]
    readers.append(model.model.norm.weight[4:5])
    torch.testing.assert_close(scores.hidden[4], torch.cat(readers).norm().detach())


@pytest.mark.parametrize(("sizes", "key"), [((3, None, None), "kv_groups"), ((0, None, None), "kv_groups"),
                                            ((None, 65, None), "intermediate_size"),
                                            ((None, None, 33), "hidden_size")])
def test_impossible_sizes_are_config_errors(llama_folder, sizes, key):
    with pytest.raises(ConfigError, match=f"student.from_teacher.{key}: .* not possible"):
        prune_decoder_width(load(llama_folder), *sizes)


def test_other_families_and_foreign_scores_are_refused(llama_folder):
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel

    for other in (GPT2LMHeadModel(GPT2Config(n_embd=32, n_layer=1, n_head=4)),
                  BertModel(BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4))):
        with pytest.raises(ConfigError, match="supports the llama and qwen2 families"):
            prune_decoder_width(other, None, 32, None)
    model = load(llama_folder)
    scores = decoder_weight_scores(model)
    wrong = DecoderScores(scores.groups, scores.units, torch.ones(16))
    with pytest.raises(InputError, match="scores do not fit this model"):
        prune_decoder_width(model, None, None, 8, wrong)
    with pytest.raises(InputError, match="no calibration texts"):
        decoder_activation_scores(model, None, [], 64)


def test_input_model_is_a_copy_not_a_view(llama_folder):
    model = load(llama_folder)
    reference = copy.deepcopy(model)
    student = prune_decoder_width(model, 1, 32, 16)
    with torch.no_grad():
        for p in student.parameters():
            p.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), reference.state_dict().values()))
