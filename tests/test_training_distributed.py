"""The loop's own step over two logical CPU replicas (MirroredStrategy) computes what it
computes on one device.

Logical devices must be configured before TensorFlow initialises, so the check runs in a
subprocess.
"""

import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json
    import numpy as np
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from crct_tf.geometry.crop_settings import CropSettings
    from crct_tf.models.tiny_backbone import build_tiny_backbone
    from crct_tf.training import loop, tasks

    rng = np.random.default_rng(0)
    crops = rng.uniform(0, 255, (8, 128, 128, 3)).astype("float32")
    target = rng.uniform(20, 100, (8, 68, 2)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((crops, target)).batch(8).repeat()
    config = loop.LoopConfig(model_dir="unused", steps=2, batch_size=8, learning_rate=1e-3)

    def run(strategy):
        keras.utils.set_random_seed(1)
        task = tasks.get_task("fll", CropSettings(), build_tiny_backbone)
        with strategy.scope():
            task.build_model()
            optimizer = loop.make_optimizer(config, task.trainable_variables())
        # The loop's own step: strategy.run over the replicas, losses summed, metrics averaged.
        step = loop.make_step_fn(task, optimizer, strategy, None, config.batch_size, config.seed)
        iterator = iter(strategy.experimental_distribute_dataset(dataset))
        losses = [float(step(iterator)[0]) for _ in range(2)]
        kernel = task.model.get_layer("fll_regression").kernel.numpy()
        return losses, float(kernel.sum()), float(np.abs(kernel).sum())

    two = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    one = tf.distribute.OneDeviceStrategy("/cpu:0")
    print(json.dumps({"replicas": two.num_replicas_in_sync,
                      "two": run(two), "one": run(one)}))
""")


def test_two_replicas_give_the_same_loss_and_update_as_one():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["replicas"] == 2
    (losses2, kernel2, size2), (losses1, kernel1, size1) = figures["two"], figures["one"]
    # The second step's loss differs from the first (the update happened) and agrees across
    # strategies, so the replicas' gradients were combined as one device computes them.
    assert losses1[1] != losses1[0] and size1 > 0
    for loss2, loss1 in zip(losses2, losses1):
        assert abs(loss2 - loss1) <= 1e-4 * abs(loss1)
    assert abs(kernel2 - kernel1) <= 1e-4 * max(1.0, abs(kernel1))
    assert abs(size2 - size1) <= 1e-4 * size1
