import pytest
import torch

from lstmkit.config import ModelConfig
from lstmkit.models.classifier import AttentionPool, TextClassifier, mask_of


def _model(pooling: str, bidirectional: bool = True, num_classes: int = 2, num_layers: int = 1) -> TextClassifier:
    torch.manual_seed(0)
    config = ModelConfig(embed_dim=8, hidden_size=6, num_layers=num_layers, dropout=0.3,
                         bidirectional=bidirectional, pooling=pooling)
    return TextClassifier(config, vocab_size=30, num_classes=num_classes).eval()


@pytest.mark.parametrize("pooling", ["last", "max", "mean", "attention"])
@pytest.mark.parametrize("bidirectional, num_layers, num_classes", [(True, 1, 2), (False, 2, 3), (True, 2, 4)])
def test_padding_never_changes_the_prediction(pooling, bidirectional, num_layers, num_classes):
    model = _model(pooling, bidirectional, num_classes, num_layers)
    texts = [torch.randint(2, 30, (n,)) for n in (9, 4, 1, 7)]
    alone = torch.stack([model(t[None], torch.tensor([len(t)]))[0] for t in texts])   # (4,) or (4, C)
    ids = torch.zeros(4, 12, dtype=torch.long)
    for row, t in enumerate(texts):
        ids[row, : len(t)] = t
    lengths = torch.tensor([len(t) for t in texts])
    batched = model(ids, lengths)
    assert batched.shape == ((4,) if num_classes == 2 else (4, num_classes))
    torch.testing.assert_close(batched, alone, atol=1e-6, rtol=1e-5)
    garbage = ids.clone()
    garbage[garbage == 0] = 17  # whatever sits in the padded positions is ignored
    torch.testing.assert_close(model(garbage, lengths), batched, atol=1e-6, rtol=1e-5)


def test_attention_weights_are_zero_on_padding_and_sum_to_one():
    model = _model("attention")
    ids = torch.randint(2, 30, (3, 10))
    lengths = torch.tensor([10, 6, 2])
    logits, weights = model.forward_with_weights(ids, lengths)
    assert logits.shape == (3,) and weights.shape == (3, 10)
    assert torch.all(weights[~mask_of(lengths, 10)] == 0)
    torch.testing.assert_close(weights.sum(dim=1), torch.ones(3))
    assert model.forward_with_weights(ids, lengths)[1] is not None
    assert _model("max").forward_with_weights(ids, lengths)[1] is None


def test_attention_pool_picks_the_scored_step():
    pool = AttentionPool(2)
    with torch.no_grad():
        pool.project.weight.copy_(torch.eye(2) * 10)
        pool.project.bias.zero_()
        pool.score.weight.copy_(torch.tensor([[10.0, 0.0]]))
    y = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [5.0, 5.0]]])                 # (1, 3, 2)
    pooled, weights = pool(y, torch.tensor([[True, True, False]]))
    assert weights[0, 1] > 0.99 and weights[0, 2] == 0
    torch.testing.assert_close(pooled, y[:, 1], atol=1e-3, rtol=0)


def test_dropout_only_in_training_and_gradients_reach_the_embedding():
    model = _model("max").train()
    ids, lengths = torch.randint(2, 30, (4, 5)), torch.tensor([5, 5, 3, 2])
    assert not torch.equal(model(ids, lengths), model(ids, lengths))
    model(ids, lengths).sum().backward()
    assert model.encoder.embedding.weight.grad.abs().sum() > 0
    model.eval()
    assert torch.equal(model(ids, lengths), model(ids, lengths))
