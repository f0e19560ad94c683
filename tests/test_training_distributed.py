"""MirroredStrategy over two logical CPU devices computes what one device computes.

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
    from crct_tf.training import tasks

    rng = np.random.default_rng(0)
    crops = rng.uniform(0, 255, (8, 128, 128, 3)).astype("float32")
    target = rng.uniform(20, 100, (8, 68, 2)).astype("float32")
    dataset = tf.data.Dataset.from_tensor_slices((crops, target)).batch(8)

    def run(strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            task = tasks.build_task("fll", CropSettings(), build_tiny_backbone)
            optimizer = keras.optimizers.Adam(1e-3)
            optimizer.build(task.trainable_variables())
        variables = task.trainable_variables()

        def replica_step(batch):
            with tf.GradientTape() as tape:
                loss, _ = task.fll_loss(batch, 8)
            optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        @tf.function
        def step(batch):
            loss = strategy.run(replica_step, args=(batch,))
            return strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)

        batch = next(iter(strategy.experimental_distribute_dataset(dataset)))
        loss = float(step(batch))
        return loss, float(task.model.get_layer("fll_regression").kernel.numpy().sum())

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
    (loss2, kernel2), (loss1, kernel1) = figures["two"], figures["one"]
    assert abs(loss2 - loss1) <= 1e-4 * abs(loss1)
    assert abs(kernel2 - kernel1) <= 1e-4 * max(1.0, abs(kernel1))
