# Cross-domain: PromptSG ViT-B/16 trained on Market-1501 (as promptsg_vit-b16_1xb64_market1501.py,
# validated on held-out Market training ids), tested on three test sets in one run: Market-1501,
# DukeMTMC-reID and MSMT17. Each is scored on its own query/gallery and reported as
# reid/<name>/...; reid/mAP, reid/rank1, ... are the mean over the three (docs/datasets.md).
# Set each test set's folder with --cfg-options test_dataloader.dataset.datasets.<i>.data_root=...
# (--data-root names one folder, so with several test sets it is refused).
_base_ = ['./promptsg_vit-b16_1xb64_market1501.py']

test_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type='ConcatReIDDataset',
        datasets=[
            dict(type='Market1501', data_root='data/market1501', split='test'),
            dict(type='DukeMTMCreID', data_root='data/dukemtmc', split='test'),
            dict(type='MSMT17', data_root='data/msmt17', split='test'),
        ],
        pipeline={{_base_.test_pipeline}},
    )
)
