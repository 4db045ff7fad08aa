# PromptSG on CLIP RN50, CUHK03-NP (labeled
# on 767/700), with the paper's training recipe (SPEC §1): batch 64 = 16 ids x 4
# images on one device, 256x128, Adam lr 5e-6 visual / 5e-5 modules, 60 epochs, x0.1 at 20 and 40.
# Targets and what has been run: docs/results.md.
_base_ = [
    '../_base_/datasets/cuhk03np_labeled.py',
    '../_base_/models/promptsg_rn50_person.py',
    '../_base_/schedules/multistep.py',
    '../_base_/default_runtime.py',
]

# Validation every epoch on held-out training ids; early stopping waits a whole learning-rate
# phase (20 epochs) so that a plateau before a decay does not end the run. The best-validation
# checkpoint is the one tested.
default_hooks = dict(early_stopping=dict(patience=20, min_delta=0.1))
