"""``FKDEpochBasedTrainLoop``: epochs that mean what the user expects with m crops per image.

One pass over an :class:`~mmkd_ext.fkd.datasets.FKDDataset` with ``m`` crops per image shows the
student ``m`` epochs' worth of samples (paper Sec. 3.3, "serrated" schedule). With this loop,
``max_epochs`` and ``val_interval`` are counted in those *crop-epochs* (the same numbers as for
vanilla training, e.g. 300 on ImageNet), and:

* training runs ``max_epochs / m`` passes (``max_epochs`` must be a multiple of ``m``);
* ``runner.epoch`` advances by ``m`` per pass, so checkpoints are named ``epoch_{m}.pth``,
  ``epoch_{2m}.pth``, ... and resume continues at the right place;
* every ``by_epoch`` parameter scheduler is stepped ``m`` times per pass, i.e. it is evaluated at the
  crop-epoch index once per pass ([X] official loop ``for epoch in range(0, epochs, m)``): a cosine
  schedule becomes the paper's serrated cosine (constant within a pass, then a jump), step
  schedules are unchanged. Schedulers with ``convert_to_iter_based=True`` count *passes*
  (MMEngine converts them with the length of one pass): express iteration-based schedules in
  iterations instead.
* validation runs after the pass that reaches a multiple of ``val_interval`` crop-epochs, and at the end.

The [X] official "final m epochs with a single-crop loader" phase (METHODS.md 4.8 F7) is not built in.
"""
from __future__ import annotations

import copy
from typing import Dict, List, Union

from mmengine.runner import EpochBasedTrainLoop

from ..registry import LOOPS


def _by_epoch_schedulers(param_schedulers) -> List:
    if param_schedulers is None:
        return []
    groups = param_schedulers.values() if isinstance(param_schedulers, dict) else [param_schedulers]
    return [s for group in groups for s in group if getattr(s, 'by_epoch', False)]


def _scheduler_cfgs(param_schedulers) -> List[dict]:
    """Every scheduler config dict of a ``param_scheduler`` setting (one dict, a list, or one list per optimizer)."""
    if param_schedulers is None:
        return []
    if isinstance(param_schedulers, dict) and 'type' not in param_schedulers:  # {optimizer name: schedulers}
        return [c for group in param_schedulers.values() for c in _scheduler_cfgs(group)]
    items = [param_schedulers] if isinstance(param_schedulers, dict) else list(param_schedulers)
    return [c for c in items if isinstance(c, dict)]


def convert_by_crop_epoch(param_schedulers, iters_per_crop_epoch: float):
    """A copy of ``param_schedulers`` whose ``convert_to_iter_based`` schedulers count crop-epochs.

    MMEngine converts an epoch-based scheduler with ``convert_to_iter_based=True`` using the
    ``epoch_length`` argument, by default the dataloader length (one FKD pass of m crop-epochs). Setting
    ``epoch_length`` to the length of one crop-epoch makes ``begin``/``end``/``T_max`` count crop-epochs.

    Args:
        param_schedulers: the runner's ``param_scheduler`` setting, not yet built (dict, list or dict of lists).
        iters_per_crop_epoch: ``len(dataloader) / m``; may be fractional.

    Returns:
        The converted copy (the input is left as it is), or the input itself when nothing converts.

    Raises:
        ValueError: a converted step scheduler (``milestones``/``step_size``) with a fractional crop-epoch
            length, whose iteration milestones would never be reached.
    """
    def converted(cfg: dict) -> bool:
        return cfg.get('convert_to_iter_based', False) and cfg.get('by_epoch', True) and 'epoch_length' not in cfg

    if not any(converted(c) for c in _scheduler_cfgs(param_schedulers)):
        return param_schedulers  # nothing to convert (and built schedulers are not copied)
    out = copy.deepcopy(param_schedulers)
    for cfg in filter(converted, _scheduler_cfgs(out)):
        if ('milestones' in cfg or 'step_size' in cfg) and iters_per_crop_epoch != int(iters_per_crop_epoch):
            raise ValueError(f"{cfg['type']}(convert_to_iter_based=True) under FKDEpochBasedTrainLoop: one crop-epoch "
                             f'is {iters_per_crop_epoch:g} iterations (not a whole number), so iteration milestones '
                             'cannot match crop-epochs; give the scheduler by_epoch=True without conversion, or '
                             'make the number of iterations per pass a multiple of crops_per_image')
        cfg['epoch_length'] = iters_per_crop_epoch
    return out


@LOOPS.register_module()
class FKDEpochBasedTrainLoop(EpochBasedTrainLoop):
    """Epoch-based loop counting crop-epochs over an FKD dataset (see the module docstring).

    Args:
        runner: the runner.
        dataloader: dataloader (config) over an ``FKDDataset``.
        max_epochs: crop-epochs to train; a multiple of the dataset's ``crops_per_image``.
        val_begin: crop-epoch from which to validate.
        val_interval: validation interval in crop-epochs.
    """

    def __init__(self, runner, dataloader: Union[Dict, object], max_epochs: int, val_begin: int = 1,
                 val_interval: int = 1) -> None:
        super().__init__(runner, dataloader, max_epochs, val_begin, val_interval)
        dataset = self.dataloader.dataset
        if not hasattr(dataset, 'crops_per_image'):
            raise TypeError(f'FKDEpochBasedTrainLoop trains on an FKDDataset (crops_per_image m), got '
                            f'{type(dataset).__name__}; use the default EpochBasedTrainLoop for other datasets')
        self.crops_per_image = int(dataset.crops_per_image)
        if self._max_epochs % self.crops_per_image:
            raise ValueError(f'FKD max_epochs ({self._max_epochs} crop-epochs) must be a multiple of '
                             f'crops_per_image ({self.crops_per_image}): each pass trains {self.crops_per_image} '
                             'crop-epochs')
        self.passes = self._max_epochs // self.crops_per_image
        self._max_iters = self.passes * len(self.dataloader)
        # the runner builds its param schedulers after the train loop: convert them by crop-epoch now
        runner.param_schedulers = convert_by_crop_epoch(runner.param_schedulers,
                                                        len(self.dataloader) / self.crops_per_image)
        if getattr(dataset, 'sampling', 'random') == 'non_overlap' and getattr(
                self.dataloader, 'persistent_workers', False):
            raise ValueError("FKDDataset(sampling='non_overlap') needs persistent_workers=False so that "
                             'workers see the pass index')

    def run(self):
        """Train ``max_epochs / m`` passes, validating by crop-epochs."""
        self.runner.call_hook('before_train')
        while self._epoch < self._max_epochs and not self.stop_training:
            before = self._epoch
            self.run_epoch()
            crossed = self._epoch // self.val_interval > before // self.val_interval
            if (self.runner.val_loop is not None and self._epoch >= self.val_begin
                    and (crossed or self._epoch >= self._max_epochs)):
                self.runner.val_loop.run()
        self.runner.call_hook('after_train')
        return self.runner.model

    def run_epoch(self) -> None:
        """One pass = m crop-epochs; hooks at the end of the pass see its last crop-epoch."""
        m = self.crops_per_image
        dataset = self.dataloader.dataset
        if hasattr(dataset, 'set_epoch'):
            dataset.set_epoch(self._epoch // m)
        self.runner.call_hook('before_train_epoch')
        self.runner.model.train()
        for idx, data_batch in enumerate(self.dataloader):
            self.run_iter(idx, data_batch)
        for scheduler in _by_epoch_schedulers(self.runner.param_schedulers):
            for _ in range(m - 1):  # ParamSchedulerHook adds the m-th step in after_train_epoch
                scheduler.step()
        self._epoch += m - 1
        self.runner.call_hook('after_train_epoch')
        self._epoch += 1
