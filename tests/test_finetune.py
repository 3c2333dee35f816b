"""Fine-tuning a 16-joint (MPII) model on COCO-format data with 17 keypoints."""

import pytorch_lightning as pl
import torch
from safetensors.torch import save_file

from poselit.callbacks import FreezeBackbone
from poselit.data.datamodule import PoseDataModule
from poselit.models import LuvizonSoftArgmax

TINY = {"num_blocks": 1, "width": 32, "input_size": (64, 64)}


class Record(pl.Callback):
    """Per-epoch mean training loss and the trunk's weights at the end of each epoch."""

    def __init__(self):
        self.losses, self.trunks = [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.losses.append([])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses[-1].append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer, pl_module):
        self.trunks.append({k: v.clone() for k, v in pl_module.feature_extractor().state_dict().items()})


def test_finetune_from_16_to_17_joints_loads_the_shared_layers_and_learns(data_root, tmp_path):
    torch.manual_seed(0)
    source = LuvizonSoftArgmax(skeleton="mpii", **TINY)
    weights = tmp_path / "mpii.safetensors"
    save_file(source.state_dict(), weights)

    data = PoseDataModule(
        train=["coco@coco-mini"], val=["coco@coco-mini"], data_root=str(data_root),
        input_size=(64, 64), batch_size=8, num_workers=0,
    )
    assert data.skeleton.num_joints == 17 and data.skeleton.flip_pairs  # names and pairs from the category
    model = LuvizonSoftArgmax(skeleton=data.skeleton_spec, init_from=str(weights), **TINY)

    # Joint-specific tensors, found independently: those whose shape depends on the joint count.
    shapes_16 = {k: v.shape for k, v in source.state_dict().items()}
    joint_specific = {k for k, v in model.state_dict().items() if v.shape != shapes_16[k]}
    assert joint_specific  # the map layers of each block
    report = model.load_compatible_weights(weights)
    assert set(report["reshaped"]) == joint_specific and not report["missing"]
    assert set(report["loaded"]) == set(model.state_dict()) - joint_specific
    for name in report["loaded"]:
        assert torch.equal(model.state_dict()[name], source.state_dict()[name]), name
    loaded_trunk = {k: v.clone() for k, v in model.feature_extractor().state_dict().items()}

    record = Record()
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[FreezeBackbone(epochs=1), record],
    )
    trainer.fit(model, data)  # setup("fit") loads init_from again: same weights
    first, last = (sum(losses) / len(losses) for losses in (record.losses[0], record.losses[-1]))
    assert last < first, (first, last)
    frozen_epoch, later = record.trunks[0], record.trunks[-1]
    assert all(torch.equal(frozen_epoch[k], loaded_trunk[k]) for k in loaded_trunk)  # weights and BN statistics
    assert any(not torch.equal(later[k], loaded_trunk[k]) for k in loaded_trunk)
