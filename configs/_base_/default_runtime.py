# Runtime shared by every config: scope, hooks, logging, seed. Keys: docs/config.md.
default_scope = 'promptsg'

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    logger=dict(type='LoggerHook', interval=10),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Epoch checkpoints written after the epoch's validation, atomically; the best one kept by
    # the metric early stopping watches.
    checkpoint=dict(
        type='ReIDCheckpointHook',
        interval=1,
        max_keep_ckpts=1,
        save_best='reid/mAP',
        rule='greater',
        backend_args=dict(backend='atomic_local'),
    ),
    sampler_seed=dict(type='DistSamplerSeedHook'),
    # Set to None to train for all epochs.
    early_stopping=dict(
        type='ReIDEarlyStoppingHook', monitor='reid/mAP', patience=3, min_delta=0.0, rule='greater'
    ),
)
custom_hooks = [
    dict(type='ReIDTrainingHook'),
    dict(type='PortableCheckpointHook'),
    dict(type='RandomStateHook'),
    dict(type='SyncBuffersHook'),  # under DDP, every rank validates with the same BN statistics
    dict(type='FeatureProgressHook'),
]

env_cfg = dict(
    cudnn_benchmark=None,  # None: on with CUDA unless randomness.deterministic (fixed input size)
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)
# Under DDP, find_unused_parameters='auto' turns it on only when a configured part goes unused
# in training (e.g. a head whose loss is off); True or False force it. (The scope prefix is
# needed: mmengine looks the wrapper type up in its root registry.)
model_wrapper_cfg = dict(type='promptsg.ReIDDistributedDataParallel', find_unused_parameters='auto')
log_processor = dict(type='LogProcessor', window_size=10, by_epoch=True)
log_level = 'INFO'
# Add dict(type='TensorboardVisBackend') (or pass --tensorboard) when tensorboard is installed.
vis_backends = [dict(type='LocalVisBackend')]
visualizer = dict(type='Visualizer', vis_backends=vis_backends)

load_from = None
resume = False
randomness = dict(seed=0, deterministic=False)
