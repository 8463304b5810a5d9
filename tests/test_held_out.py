"""mmkd_ext/held_out.py: the shared held-out split of the training set."""
import pytest

from mmkd_ext.held_out import HeldOutSubset, held_out_dataloaders, held_out_eval_dataloader, held_out_indices


def test_every_tenth_image_is_held_out_and_the_parts_are_disjoint():
    train, held = held_out_indices(25)
    assert held == [9, 19] and train == [i for i in range(25) if i not in (9, 19)]


def test_subset_serves_its_part_of_the_wrapped_dataset():
    data = list('abcdefghij')
    assert list(HeldOutSubset(data, 'held_out', every=3)) == ['c', 'f', 'i']
    assert ''.join(HeldOutSubset(data, 'train', every=3)) == 'abdeghj'
    with pytest.raises(ValueError, match="no 'held_out' part"):
        HeldOutSubset(data[:2], 'held_out', every=3)


def test_held_out_loader_reads_the_training_images_with_the_evaluation_pipeline():
    train = dict(batch_size=8, dataset=dict(type='CIFAR100', split='train', pipeline=['crop', 'flip', 'pack']))
    val = dict(batch_size=100, dataset=dict(type='CIFAR100', split='test', pipeline=['pack']))
    train_part, held = held_out_dataloaders(train, val, every=5)
    assert train_part['dataset'] == dict(type='HeldOutSubset', dataset=train['dataset'], part='train', every=5)
    assert held['batch_size'] == 100 and held['dataset']['part'] == 'held_out'
    assert held['dataset']['dataset'] == dict(type='CIFAR100', split='train', pipeline=['pack'])


def test_held_out_evaluation_needs_a_training_set_that_leaves_the_images_out():
    whole = dict(type='CIFAR100', split='train', pipeline=['pack'])  # trains on every image
    with pytest.raises(ValueError, match="HeldOutSubset', part='train'"):
        held_out_eval_dataloader(whole, dict(dataset=dict(pipeline=['pack'])))
